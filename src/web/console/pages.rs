//! The console pages as askama templates (`templates/console/*.html`), the
//! console's error pages, and the read-only audit page (the dashboard is
//! `dashboard.rs`).
//!
//! Owns: the data each console page shows, already display strings.
//!
//! Invariants:
//! - Every value is HTML-escaped by askama; no `|safe` anywhere.
//! - Text comes from the `[console]` catalog section, never the templates.
//! - Rendering goes through the webmail's `pages::render`, so a template
//!   failure is a plain 500 there too.
//!
//! Reads untrusted input: addresses from the directory and audit lines
//! (rendered escaped).

use askama::Template;

use super::audit::{AuditEntry, SEARCH_LIMIT};
use super::{Console, Ctx};
use crate::web::assets;
use crate::web::http::Reply;
use crate::web::i18n::{Catalog, Lang};
use crate::web::session::Session;
use crate::web::webmail::pages::render;

/// The frame around every console page.
pub struct ConsoleChrome {
    pub lang: &'static str,
    pub title: String,
    pub css_href: String,
    /// The operations pages' styles (charts, queue and log tables).
    pub ops_css_href: String,
    pub icon_href: String,
    pub switch_lang_href: String,
    pub switch_lang_code: &'static str,
    pub admin: Option<AdminBar>,
}

/// The header of a signed-in console page.
pub struct AdminBar {
    pub signed_in_text: String,
    pub csrf_token: String,
}

impl ConsoleChrome {
    /// `path` is the page's own path, for the switch-language link.
    pub fn new(t: &Catalog, title_key: &str, path: &str, session: Option<&Session>) -> Self {
        let other = t.lang().other();
        ConsoleChrome {
            lang: t.lang().code(),
            title: t.get(title_key).to_string(),
            css_href: assets::url("webmail.css"),
            ops_css_href: assets::url("console-ops.css"),
            icon_href: assets::url("favicon.svg"),
            switch_lang_href: format!("{path}?lang={}", other.code()),
            switch_lang_code: other.code(),
            admin: session.map(|s| AdminBar {
                signed_in_text: t.fill("console.signed_in_as", &[("admin", &s.user)]),
                csrf_token: s.csrf_token.clone(),
            }),
        }
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    csrf_token: String,
    error: Option<String>,
}

/// The admin login page.
pub fn login(ctx: &Ctx<'_>, status: u16, csrf_token: &str, error: Option<String>) -> Reply {
    let t = ctx.lang.catalog();
    let page = LoginPage {
        t,
        chrome: ConsoleChrome::new(t, "console.login_title", "/admin/login", None),
        csrf_token: csrf_token.to_string(),
        error,
    };
    render(status, &page)
}

/// One row of the users table.
pub struct UserRow {
    pub address: String,
    pub enabled: bool,
    pub state: String,
    pub class: String,
    pub display_name: String,
    /// The user's own page (`/admin/users/edit?address=`).
    pub edit_href: String,
}

/// What the users page shows (built by `users.rs`).
pub struct UsersView {
    pub query: String,
    pub rows: Vec<UserRow>,
    pub count_text: String,
    pub more_text: Option<String>,
    pub message: Option<String>,
    pub error: Option<String>,
    /// The address to put back into the create form after a failure.
    pub address: String,
    /// The classes the create form offers (`default` first).
    pub classes: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    csrf_token: String,
    view: UsersView,
}

pub fn users(ctx: &Ctx<'_>, session: &Session, status: u16, view: UsersView) -> Reply {
    let t = ctx.lang.catalog();
    let page = UsersPage {
        t,
        chrome: ConsoleChrome::new(t, "console.users_title", "/admin/users", Some(session)),
        csrf_token: session.csrf_token.clone(),
        view,
    };
    render(status, &page)
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    query: String,
    rows: Vec<AuditEntry>,
    more_text: Option<String>,
    /// How long the files are kept (`[logs] keep_days`).
    keep_text: String,
    /// The CSV export of the same search.
    export_href: String,
}

/// `GET /admin/audit?q=`: the newest matching audit lines.
pub fn audit(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let query: String = ctx.query.get("q").unwrap_or("").chars().take(256).collect();
    let found = match console.audit.search(&query) {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(%err, "reading the audit log failed");
            return problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    let page = AuditPage {
        t,
        chrome: ConsoleChrome::new(t, "console.audit_title", "/admin/audit", Some(session)),
        keep_text: t.fill(
            "ops.audit_keep",
            &[("days", &console.monitor.config().logs.keep_days.to_string())],
        ),
        export_href: format!("/admin/audit.csv?q={}", crate::web::form::encode(&query)),
        query,
        rows: found.entries,
        more_text: found.more.then(|| {
            t.fill(
                "console.audit_more",
                &[("limit", &SEARCH_LIMIT.to_string())],
            )
        }),
    };
    render(200, &page)
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    heading: String,
    message: String,
}

/// The kinds of console error page, each with its status and strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    NotFound,
    BadRequest,
    FormExpired,
    TooLarge,
    Method,
    Forbidden,
    /// A signed-in mail user (no admin) asked for a console page.
    NotAnAdmin,
    Internal,
}

impl Problem {
    fn parts(self) -> (u16, &'static str, &'static str) {
        match self {
            Problem::NotFound => (404, "console.not_found_title", "console.not_found"),
            Problem::BadRequest => (400, "console.bad_request_title", "console.bad_request"),
            Problem::FormExpired => (403, "console.form_expired_title", "console.form_expired"),
            Problem::TooLarge => (413, "console.too_large_title", "console.too_large"),
            Problem::Method => (405, "console.method_title", "console.method"),
            Problem::Forbidden => (403, "console.forbidden_title", "console.forbidden"),
            Problem::NotAnAdmin => (403, "console.forbidden_title", "console.not_an_admin"),
            Problem::Internal => (500, "console.internal_title", "console.internal"),
        }
    }
}

/// A localized console error page that says what is wrong and what to do.
pub fn problem(lang: Lang, problem: Problem, session: Option<&Session>) -> Reply {
    let t = lang.catalog();
    let (status, heading, message) = problem.parts();
    let page = ErrorPage {
        t,
        chrome: ConsoleChrome::new(t, heading, "/admin", session),
        heading: t.get(heading).to_string(),
        message: t.get(message).to_string(),
    };
    render(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_named_in_console_templates_exists_in_both_catalogs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/console");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("templates/console exists") {
            let path = entry.expect("dir entry").path();
            let text = std::fs::read_to_string(&path).expect("template readable");
            for piece in text.split("t.get(\"").skip(1) {
                let key = piece.split('"').next().unwrap_or("");
                for lang in [Lang::Ko, Lang::En] {
                    assert_ne!(
                        lang.catalog().get(key),
                        key,
                        "{}: unknown key {key}",
                        path.display()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "console templates name catalog keys");
    }

    #[test]
    fn audit_and_user_rows_are_escaped() {
        let t = Lang::En.catalog();
        let session = Session {
            user: "admin".into(),
            stamp: None,
            csrf_token: "tok".into(),
            created_at: 0,
            ip: std::net::IpAddr::from([192, 0, 2, 1]),
        };
        let page = AuditPage {
            t,
            chrome: ConsoleChrome::new(t, "console.audit_title", "/admin/audit", Some(&session)),
            query: "\"><script>".into(),
            rows: vec![AuditEntry::new(
                0,
                "<b>admin",
                session.ip,
                "login",
                "<script>alert(1)</script>",
                "wrong_password",
            )],
            more_text: None,
            keep_text: String::new(),
            export_href: "/admin/audit.csv?q=".into(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>admin"));
        assert!(html.contains("name=\"csrf_token\" value=\"tok\""));
        assert!(html.contains("<html lang=\"en\">"));

        let page = UsersPage {
            t,
            chrome: ConsoleChrome::new(t, "console.users_title", "/admin/users", Some(&session)),
            csrf_token: "tok".into(),
            view: UsersView {
                query: String::new(),
                rows: vec![UserRow {
                    address: "\"><img src=x>@example.ac.kr".into(),
                    enabled: true,
                    state: "enabled".into(),
                    class: "<i>".into(),
                    display_name: "<i>".into(),
                    edit_href: "/admin/users/edit?address=x".into(),
                }],
                count_text: String::new(),
                more_text: Some("more".into()),
                message: None,
                error: Some("<u>bad</u>".into()),
                address: "<x>".into(),
                classes: vec!["default".into(), "<s>".into()],
            },
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<img src=x>") && !html.contains("<i>"));
        assert!(!html.contains("<u>bad") && !html.contains("<x>"));
        assert!(html.contains("action=\"/admin/users/disable\""));
    }

    #[test]
    fn console_errors_are_localized_and_lead_back_to_the_console() {
        let reply = problem(Lang::Ko, Problem::Forbidden, None);
        assert_eq!(reply.status, 403);
        let body = String::from_utf8(reply.body).unwrap();
        assert!(body.contains(Lang::Ko.catalog().get("console.forbidden")));
        assert!(body.contains("href=\"/admin\""));
        assert!(!body.contains("/mail"));
    }
}
