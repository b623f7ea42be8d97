//! The web stack's own request and reply types, independent of tiny-http, so
//! handlers are plain functions that unit tests can call.
//!
//! Owns: the security headers every reply carries (`Reply::finish`) and the
//! cookie attributes (`session_cookie`), so no handler can forget them.
//!
//! Invariants:
//! - Every reply leaves through `finish`: `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: no-referrer`, HSTS, a frame policy, and, unless the
//!   handler set its own, the page CSP and `Cache-Control: no-store`.
//! - Cookies we set are `Secure; HttpOnly; SameSite=Strict; Path=/`.
//!
//! Reads untrusted input: yes (headers, cookies, query, body), but only
//! stores it here; parsing happens in `form` and the handlers.

use std::net::SocketAddr;

use super::form::{Form, FormError};

/// The Content-Security-Policy of every webmail page.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest form body accepted (login, logout; compose brings its own limit).
pub const MAX_FORM_BODY: usize = 64 * 1024;
/// Largest query string accepted.
pub const MAX_QUERY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// One request as the handlers see it.
#[derive(Debug, Clone)]
pub struct WebRequest {
    pub method: Method,
    /// The path, without the query; not percent-decoded.
    pub path: String,
    /// The raw query string (after `?`), possibly empty.
    pub query: String,
    /// All Cookie headers joined with "; ".
    pub cookies: String,
    pub accept_language: Option<String>,
    pub content_type: Option<String>,
    /// The Authorization header (only `/metrics` looks at it).
    pub authorization: Option<String>,
    /// The body, read up to the route's limit (+1 to notice more).
    pub body: Vec<u8>,
    /// True when the body was larger than the route's limit.
    pub body_too_large: bool,
    /// The real client (from the TLS front), not the internal proxy socket.
    pub client: SocketAddr,
}

impl WebRequest {
    /// A GET request for tests and internal use.
    pub fn get(path_and_query: &str, client: SocketAddr) -> WebRequest {
        let (path, query) = split_url(path_and_query);
        WebRequest {
            method: Method::Get,
            path: path.to_string(),
            query: query.to_string(),
            cookies: String::new(),
            accept_language: None,
            content_type: None,
            authorization: None,
            body: Vec::new(),
            body_too_large: false,
            client,
        }
    }

    /// The value of cookie `name` (the first one, if sent twice).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.split(';').find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v.trim_matches('"'))
        })
    }

    /// The parsed query string.
    pub fn query_form(&self) -> Result<Form, FormError> {
        Form::parse(self.query.as_bytes(), MAX_QUERY)
    }

    /// The parsed form body, checking size and content type.
    pub fn body_form(&self) -> Result<Form, FormError> {
        self.body_form_repeating(&[], 0)
    }

    /// `body_form` where the fields in `repeatable` may repeat (up to
    /// `max_repeats` in all; see `Form::parse_repeating`).
    pub fn body_form_repeating(
        &self,
        repeatable: &[&str],
        max_repeats: usize,
    ) -> Result<Form, FormError> {
        if self.body_too_large || self.body.len() > MAX_FORM_BODY {
            return Err(FormError::TooLarge {
                limit: MAX_FORM_BODY,
            });
        }
        let is_form = self.content_type.as_deref().is_some_and(|ct| {
            let media = ct.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        if !is_form && !self.body.is_empty() {
            return Err(FormError::WrongContentType);
        }
        Form::parse_repeating(&self.body, MAX_FORM_BODY, repeatable, max_repeats)
    }
}

/// Splits "/path?query" into its two parts.
pub fn split_url(url: &str) -> (&str, &str) {
    match url.split_once('?') {
        Some((path, query)) => (path, query),
        None => (url, ""),
    }
}

/// One reply, before it is written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// An HTML page.
    pub fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
            body: body.into_bytes(),
        }
    }

    /// A short plain-text reply (for machines and the internal port).
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// 303 See Other to a path of our own.
    pub fn see_other(location: &str) -> Reply {
        Reply {
            status: 303,
            headers: vec![("Location", location.to_string())],
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Adds the headers every reply carries; see the module invariants.
    pub fn finish(mut self) -> Reply {
        let defaults: [(&'static str, &str); 6] = [
            ("Content-Security-Policy", PAGE_CSP),
            ("Cache-Control", "no-store"),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Strict-Transport-Security", "max-age=31536000"),
        ];
        for (name, value) in defaults {
            if self.header(name).is_none() {
                self.headers.push((name, value.to_string()));
            }
        }
        self
    }
}

/// A `Set-Cookie` value with our fixed attributes. `max_age` of `Some(0)`
/// deletes the cookie; `None` makes a browser-session cookie.
pub fn session_cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    scoped_cookie(name, value, "/", max_age)
}

/// Like `session_cookie`, sent back only for paths under `path`.
pub fn scoped_cookie(name: &str, value: &str, path: &str, max_age: Option<u64>) -> String {
    let mut cookie = format!("{name}={value}; Path={path}; Secure; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> SocketAddr {
        "192.0.2.7:50000".parse().unwrap()
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut req = WebRequest::get("/mail", client());
        req.cookies = "xcm_session=evil; cm_session=abc; lang=en".into();
        assert_eq!(req.cookie("cm_session"), Some("abc"));
        assert_eq!(req.cookie("lang"), Some("en"));
        assert_eq!(req.cookie("session"), None);
    }

    #[test]
    fn body_form_checks_type_and_size() {
        let mut req = WebRequest::get("/login", client());
        req.method = Method::Post;
        req.body = b"a=1".to_vec();
        assert!(req.body_form().is_err(), "no content type");
        req.content_type = Some("application/x-www-form-urlencoded; charset=UTF-8".into());
        assert_eq!(req.body_form().unwrap().get("a"), Some("1"));
        req.body_too_large = true;
        assert!(matches!(req.body_form(), Err(FormError::TooLarge { .. })));
    }

    #[test]
    fn finish_adds_security_headers_but_keeps_a_handlers_own() {
        let page = Reply::html(200, "<p>x</p>".into()).finish();
        assert_eq!(page.header("content-security-policy"), Some(PAGE_CSP));
        assert_eq!(page.header("Cache-Control"), Some("no-store"));
        assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));
        let own = Reply::text(200, "x")
            .with_header("Content-Security-Policy", "default-src 'none'")
            .finish();
        assert_eq!(
            own.header("Content-Security-Policy"),
            Some("default-src 'none'")
        );
        let count = own
            .headers
            .iter()
            .filter(|(n, _)| *n == "Content-Security-Policy")
            .count();
        assert_eq!(count, 1);
    }

    #[test]
    fn cookie_attributes() {
        let c = session_cookie("cm_session", "tok", None);
        assert_eq!(
            c,
            "cm_session=tok; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        assert!(session_cookie("lang", "en", Some(0)).ends_with("; Max-Age=0"));
    }
}
