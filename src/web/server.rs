//! The internal tiny-http servers (loopback only) and their worker threads.
//!
//! Owns: the two internal servers (webmail, HTTP redirect), the worker
//! threads that answer them, and the translation between tiny-http's request
//! and response types and ours (`http::WebRequest`, `http::Reply`).
//!
//! Invariants:
//! - Only connections made by `tls_front` are served: a request whose peer
//!   is not in the `ClientMap` gets 403 and never reaches a handler.
//! - Bodies are read up to the request's limit (`Webmail::body_limit`:
//!   `MAX_FORM_BODY`, or the compose form's upload limit for a live
//!   session) +1, to notice more; a declared larger body is not read at all.
//! - A panicking handler costs one 500 reply, not a worker thread.
//! - The redirect server answers everything with 301 to `public_url` plus
//!   the request's path; the Host header is never used.
//!
//! Reads untrusted input: HTTP requests (parsed by tiny-http; headers and
//! bodies handed on as data).

use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::http::{split_url, Method, Reply, WebRequest};
use super::i18n::Lang;
use super::tls_front::ClientMap;
use super::webmail::pages::{self, Problem};
use super::webmail::Webmail;
use super::WebError;

/// A tiny-http server on 127.0.0.1 with a port the OS picks.
pub fn bind_internal() -> Result<(Arc<tiny_http::Server>, SocketAddr), WebError> {
    let server =
        tiny_http::Server::http("127.0.0.1:0").map_err(|e| WebError::Internal(e.to_string()))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| WebError::Internal("internal server has no IP address".into()))?;
    Ok((Arc::new(server), addr))
}

/// Starts `count` threads answering webmail requests.
pub fn spawn_webmail_workers(
    server: Arc<tiny_http::Server>,
    webmail: Arc<Webmail>,
    clients: Arc<ClientMap>,
    count: usize,
) -> Result<Vec<JoinHandle<()>>, WebError> {
    let mut handles = Vec::new();
    for i in 0..count.max(1) {
        let server = Arc::clone(&server);
        let webmail = Arc::clone(&webmail);
        let clients = Arc::clone(&clients);
        let handle = std::thread::Builder::new()
            .name(format!("webmail-{i}"))
            .spawn(move || loop {
                match server.recv() {
                    Ok(request) => answer(request, &webmail, &clients),
                    Err(err) => tracing::warn!(%err, "internal web server receive failed"),
                }
            })
            .map_err(WebError::Thread)?;
        handles.push(handle);
    }
    Ok(handles)
}

fn answer(mut request: tiny_http::Request, webmail: &Webmail, clients: &ClientMap) {
    let client = request
        .remote_addr()
        .and_then(|peer| clients.client_of(peer));
    let reply = match client {
        None => {
            tracing::warn!(peer = ?request.remote_addr(), "request on the internal web port refused");
            let lang = Lang::negotiate(None, None, header(&request, "Accept-Language"), Lang::Ko);
            pages::problem(lang, Problem::Forbidden, None).finish()
        }
        Some(client) => {
            let mut web_request = to_web_request(&request, client);
            let limit = webmail.body_limit(&web_request);
            read_body(&mut request, &mut web_request, limit);
            match catch_unwind(AssertUnwindSafe(|| webmail.handle(&web_request))) {
                Ok(reply) => reply,
                Err(_) => {
                    tracing::error!(path = %web_request.path, "webmail handler panicked");
                    pages::problem(Lang::Ko, Problem::Internal, None).finish()
                }
            }
        }
    };
    respond(request, reply);
}

fn header<'r>(request: &'r tiny_http::Request, name: &'static str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// Our request type, without the body (see `read_body`).
fn to_web_request(request: &tiny_http::Request, client: SocketAddr) -> WebRequest {
    let method = match request.method() {
        tiny_http::Method::Get => Method::Get,
        tiny_http::Method::Head => Method::Head,
        tiny_http::Method::Post => Method::Post,
        _ => Method::Other,
    };
    let (path, query) = split_url(request.url());
    let cookies = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Cookie"))
        .map(|h| h.value.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    WebRequest {
        method,
        path: path.to_string(),
        query: query.to_string(),
        cookies,
        accept_language: header(request, "Accept-Language").map(str::to_string),
        content_type: header(request, "Content-Type").map(str::to_string),
        authorization: header(request, "Authorization").map(str::to_string),
        body: Vec::new(),
        body_too_large: false,
        client,
    }
}

/// Reads a POST body up to `limit` (+1 to notice more); a larger declared
/// length is not read at all.
fn read_body(request: &mut tiny_http::Request, web: &mut WebRequest, limit: usize) {
    if web.method != Method::Post {
        return;
    }
    if request.body_length().is_some_and(|n| n > limit) {
        web.body_too_large = true;
        return;
    }
    let take = limit.saturating_add(1) as u64;
    if let Err(err) = request.as_reader().take(take).read_to_end(&mut web.body) {
        tracing::debug!(%err, "reading a request body failed");
        web.body.clear();
    }
    web.body_too_large = web.body.len() > limit;
}

fn respond(request: tiny_http::Request, reply: Reply) {
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in &reply.headers {
        match tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            Ok(header) => response.add_header(header),
            Err(()) => tracing::error!(header = name, "reply header is not ASCII; dropped"),
        }
    }
    if let Err(err) = request.respond(response) {
        tracing::debug!(%err, "writing a web reply failed");
    }
}

/// Starts `count` threads answering the plain-HTTP port with redirects.
pub fn spawn_redirect_workers(
    server: Arc<tiny_http::Server>,
    public_url: String,
    count: usize,
) -> Result<Vec<JoinHandle<()>>, WebError> {
    let mut handles = Vec::new();
    for i in 0..count.max(1) {
        let server = Arc::clone(&server);
        let public_url = public_url.clone();
        let handle = std::thread::Builder::new()
            .name(format!("web-redirect-{i}"))
            .spawn(move || loop {
                match server.recv() {
                    Ok(request) => {
                        let location = redirect_location(&public_url, request.url());
                        let reply = Reply::text(301, "Moved to HTTPS\n")
                            .with_header("Location", location)
                            .finish();
                        respond(request, reply);
                    }
                    Err(err) => tracing::warn!(%err, "redirect server receive failed"),
                }
            })
            .map_err(WebError::Thread)?;
        handles.push(handle);
    }
    Ok(handles)
}

/// `public_url` plus the path and query of `url` (never a host from the
/// request, so this is no open redirect); a bookmark such as
/// `/mail?page=2` survives the move to HTTPS. Anything odd in the target
/// sends the browser to the front page instead.
pub fn redirect_location(public_url: &str, url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let (path, _) = split_url(url);
    let safe = path.starts_with('/')
        && !path.starts_with("//")
        && url.bytes().all(|b| b.is_ascii_graphic());
    if safe {
        format!("{base}{url}")
    } else {
        format!("{base}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_path_and_query_but_never_the_host() {
        let base = "https://mail.example.ac.kr";
        assert_eq!(
            redirect_location(base, "/mail?page=2"),
            "https://mail.example.ac.kr/mail?page=2"
        );
        assert_eq!(
            redirect_location("https://mail.example.ac.kr/", "/login"),
            "https://mail.example.ac.kr/login"
        );
        assert_eq!(
            redirect_location(base, "http://evil.example/x"),
            "https://mail.example.ac.kr/"
        );
        assert_eq!(
            redirect_location(base, "//evil.example"),
            "https://mail.example.ac.kr/"
        );
        assert_eq!(
            redirect_location(base, "/a b"),
            "https://mail.example.ac.kr/"
        );
        assert_eq!(redirect_location(base, "*"), "https://mail.example.ac.kr/");
    }
}
