//! The admin console (R17, issue 7): routes under `/admin`, the admin
//! session gate, and the state the console pages share.
//!
//! Owns: the console's own session table (admins are not mail users; their
//! cookie `cm_admin` is scoped to `Path=/admin`), the audit log
//! (`audit.rs`), and a handle on the webmail's session table so disabling a
//! user also ends their webmail session.
//!
//! How a request arrives: `Webmail::handle` hands every `/admin` and
//! `/admin/...` path to `Console::handle` before its own routing; the rest
//! of the web stack (TLS front, workers, security headers) is shared.
//!
//! Invariants:
//! - `handle` is the console's one door and every reply leaves through
//!   `Reply::finish` (CSP and the other security headers).
//! - Without a live admin session every console path except the login form
//!   answers 403 to a signed-in mail user (a live webmail `cm_session`,
//!   which grants nothing here), else 303 to `/admin/login` (GET) or 403
//!   (anything else), before the path is even looked up.
//! - Every POST behind the gate checks the session's CSRF token before it
//!   looks at any other field (`checked_form`); the login form uses its own
//!   double-submit cookie.
//! - Every admin action (login success and failure, logout, every change
//!   to users, classes, domains, aliases) is written to the audit log
//!   before the reply is sent.
//! - Directory changes go through `directory::commands::execute`, the same
//!   code path as the command line.
//! - The operations pages (`ops_routes`: queues, mail log, audit export)
//!   audit their actions too (queue hold/release/retry/delete, export), and
//!   reach the queue only through `engine.sock`, so the console works the
//!   same with the engine in another process.
//!
//! Reads untrusted input: yes, every console request (path, query, cookies,
//! forms), always after the admin gate except the login form.

mod aliases_page;
pub mod audit;
mod classes_page;
mod directory_routes;
mod directory_views;
mod domains_page;
pub mod lifecycle;
mod login;
mod pages;
mod settings_page;
mod storage;
mod transfer;
mod user_edit;
mod users;

// The operations pages: the dashboard, queues and logs (`ops_routes`).
mod charts;
mod dashboard;
mod logs;
mod ops_routes;
mod queues;

#[cfg(test)]
mod e2e_tests;

use std::sync::Arc;

use crate::config::Config;
use crate::directory::Directory;
use crate::web::csrf;
use crate::web::form::{Form, FormError};
use crate::web::http::{scoped_cookie, Method, Reply, WebRequest};
use crate::web::i18n::Lang;
use crate::web::session::{Session, SessionLookup, SessionStore};
use crate::web::webmail::answer;

use audit::{AuditEntry, AuditLog};
use pages::Problem;

/// The path every console URL lives under.
pub const PATH: &str = "/admin";
/// Name of the admin session cookie (sent by browsers only under `/admin`).
pub const COOKIE: &str = "cm_admin";
/// The pre-session CSRF cookie of the admin login form.
pub const LOGIN_CSRF_COOKIE: &str = "cm_admin_login_csrf";

/// True for `/admin` and `/admin/...`: the paths the console answers.
pub fn owns_path(path: &str) -> bool {
    path == PATH || path.strip_prefix(PATH).is_some_and(|r| r.starts_with('/'))
}

/// A console cookie: the web stack's fixed attributes (`Secure; HttpOnly;
/// SameSite=Strict`) with the path narrowed to `/admin`.
fn admin_cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    scoped_cookie(name, value, "/admin", max_age)
}

/// Where a console request goes, from its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Dashboard,
    Login,
    Logout,
    Users,
    UserDisable,
    Audit,
    Storage,
    Settings,
    /// Users, classes, domains, aliases, import/export (`directory_routes`).
    Directory(directory_routes::DirPage),
    NotFound,
}

impl Route {
    /// Exact matches only: no trailing slashes, no decoding.
    pub fn parse(path: &str) -> Route {
        match path {
            "/admin" => Route::Dashboard,
            "/admin/login" => Route::Login,
            "/admin/logout" => Route::Logout,
            "/admin/users" => Route::Users,
            "/admin/users/disable" => Route::UserDisable,
            "/admin/audit" => Route::Audit,
            "/admin/storage" => Route::Storage,
            settings_page::PATH => Route::Settings,
            other => directory_routes::DirPage::parse(other)
                .map(Route::Directory)
                .unwrap_or(Route::NotFound),
        }
    }
}

pub use crate::web::webmail::Ctx;

/// What the console handlers share.
pub struct Console {
    directory: Arc<Directory>,
    store: Arc<crate::store::Store>,
    /// Admin sessions: a table of its own, never the users' one.
    admins: SessionStore,
    /// The webmail's session table, to end a disabled user's session.
    mail_sessions: Arc<SessionStore>,
    audit: AuditLog,
    /// This node's measurements and samples (dashboard, queues, logs).
    monitor: Arc<crate::ops::node_report::Monitor>,
    default_lang: Lang,
    /// Where a domain added in the console gets its DKIM keys (as with the CLI).
    dkim_dir: std::path::PathBuf,
    /// `[mailbox] default_quota*`, shown where a user or class has none.
    default_quota: (u64, u64),
    /// `[mailbox]` as the file says (the settings page's fallbacks).
    mailbox: crate::config::MailboxConfig,
}

impl Console {
    pub fn new(
        config: &Config,
        directory: Arc<Directory>,
        store: Arc<crate::store::Store>,
        mail_sessions: Arc<SessionStore>,
        monitor: Arc<crate::ops::node_report::Monitor>,
    ) -> Console {
        let default_lang = Lang::parse(&config.mailbox.default_language).unwrap_or(Lang::Ko);
        Console {
            admins: SessionStore::new(config.mailbox.session_idle_minutes),
            audit: AuditLog::in_data_dir(&config.node.data_dir),
            directory,
            store,
            mail_sessions,
            monitor,
            default_lang,
            dkim_dir: config.dkim_dir(),
            default_quota: (
                config.mailbox.default_quota.0,
                config.mailbox.default_quota_messages,
            ),
            mailbox: config.mailbox.clone(),
        }
    }

    /// The most body bytes a request may send: the CSV upload's limit for
    /// the import form with a live admin session, else the forms' limit.
    /// Called before the body is read.
    pub fn body_limit(&self, req: &WebRequest) -> usize {
        let live = || {
            req.cookie(COOKIE)
                .is_some_and(|token| self.admins.is_live(token, chrono::Utc::now().timestamp()))
        };
        if req.path == "/admin/users/import" && live() {
            transfer::MAX_UPLOAD
        } else {
            crate::web::http::MAX_FORM_BODY
        }
    }

    /// Answers one request for a path where `owns_path` is true.
    pub fn handle(&self, req: &WebRequest) -> Reply {
        answer(req, self.default_lang, form_problem, |ctx| {
            self.dispatch(ctx, Route::parse(&req.path))
        })
    }

    fn dispatch(&self, ctx: &Ctx<'_>, route: Route) -> Reply {
        let method = match ctx.req.method {
            Method::Head => Method::Get,
            other => other,
        };
        match (method, route) {
            (Method::Get, Route::Login) => return login::show(self, ctx),
            (Method::Post, Route::Login) => return login::submit(self, ctx),
            _ => {}
        }
        let Some(session) = self.admin_session(ctx) else {
            if self.is_mail_user(ctx) {
                // A student or staff member signed in to the webmail: not
                // an admin, and told so (403), not sent to a login form.
                return pages::problem(ctx.lang, Problem::NotAnAdmin, None);
            }
            return match method {
                Method::Get => {
                    clear_admin_session(Reply::see_other("/admin/login"), ctx.req.cookie(COOKIE))
                }
                _ => pages::problem(ctx.lang, Problem::Forbidden, None),
            };
        };
        // The operations pages (queues, logs) route themselves, behind the
        // same gate.
        if let Some(page) = ops_routes::OpsPage::parse(&ctx.req.path) {
            return ops_routes::handle(self, ctx, &session, method, page);
        }
        match (method, route) {
            (Method::Get, Route::Dashboard) => dashboard::show(self, ctx, &session),
            (Method::Get, Route::Users) => users::list(self, ctx, &session),
            (Method::Post, Route::Users) => users::create(self, ctx, &session),
            (Method::Post, Route::UserDisable) => users::disable(self, ctx, &session),
            (Method::Get, Route::Audit) => pages::audit(self, ctx, &session),
            (Method::Get, Route::Storage) => storage::show(self, ctx, &session),
            (Method::Get, Route::Settings) => settings_page::show(self, ctx, &session),
            (Method::Post, Route::Settings) => settings_page::save(self, ctx, &session),
            (Method::Post, Route::Logout) => login::logout(self, ctx, &session),
            (method, Route::Directory(page)) => {
                directory_routes::dispatch(self, ctx, &session, method, page)
            }
            (_, Route::NotFound) => pages::problem(ctx.lang, Problem::NotFound, Some(&session)),
            (_, _) => pages::problem(ctx.lang, Problem::Method, Some(&session)),
        }
    }

    /// Does the request carry a live webmail session (a mail user's)?
    fn is_mail_user(&self, ctx: &Ctx<'_>) -> bool {
        ctx.req
            .cookie(crate::web::session::COOKIE)
            .is_some_and(|token| {
                matches!(
                    self.mail_sessions.lookup(token, ctx.now),
                    SessionLookup::Active(_)
                )
            })
    }

    /// The live admin session of this request, if any.
    fn admin_session(&self, ctx: &Ctx<'_>) -> Option<Session> {
        let token = ctx.req.cookie(COOKIE)?;
        match self.admins.lookup(token, ctx.now) {
            SessionLookup::Active(session) => Some(session),
            _ => None,
        }
    }

    /// Writes one audit line; a failure is logged loudly (the action itself
    /// has already happened and is not undone).
    fn audit(&self, ctx: &Ctx<'_>, admin: &str, action: &str, target: &str, outcome: &str) {
        let entry = AuditEntry::new(ctx.now, admin, ctx.ip(), action, target, outcome);
        if let Err(err) = self.audit.record(&entry) {
            tracing::error!(%err, action, target, outcome, "audit log write failed");
        }
    }
}

/// The form body of a POST behind the gate, once its CSRF token matched
/// the session's; otherwise the reply (400/413 or 403) to send instead.
fn checked_form(ctx: &Ctx<'_>, session: &Session) -> Result<Form, Reply> {
    let form = ctx
        .req
        .body_form()
        .map_err(|err| form_problem(ctx.lang, &err))?;
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        tracing::warn!(path = %ctx.req.path, ip = %ctx.ip(), "console form refused: CSRF token mismatch");
        return Err(pages::problem(
            ctx.lang,
            Problem::FormExpired,
            Some(session),
        ));
    }
    Ok(form)
}

/// Tells the browser to forget a console session cookie it sent.
fn clear_admin_session(reply: Reply, sent: Option<&str>) -> Reply {
    match sent {
        Some(_) => reply.with_header("Set-Cookie", admin_cookie(COOKIE, "", Some(0))),
        None => reply,
    }
}

/// The page for a malformed query or form.
fn form_problem(lang: Lang, err: &FormError) -> Reply {
    tracing::debug!(%err, "malformed console form or query");
    match err {
        FormError::TooLarge { .. } => pages::problem(lang, Problem::TooLarge, None),
        _ => pages::problem(lang, Problem::BadRequest, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_owns_admin_and_below_only() {
        assert!(owns_path("/admin"));
        assert!(owns_path("/admin/"));
        assert!(owns_path("/admin/users"));
        assert!(!owns_path("/administrator"));
        assert!(!owns_path("/adminx/users"));
        assert!(!owns_path("/mail"));
        assert!(!owns_path("/"));
    }

    #[test]
    fn routes_are_exact() {
        assert_eq!(Route::parse("/admin"), Route::Dashboard);
        assert_eq!(Route::parse("/admin/login"), Route::Login);
        assert_eq!(Route::parse("/admin/logout"), Route::Logout);
        assert_eq!(Route::parse("/admin/users"), Route::Users);
        assert_eq!(Route::parse("/admin/users/disable"), Route::UserDisable);
        assert_eq!(Route::parse("/admin/audit"), Route::Audit);
        for path in [
            "/admin/",
            "/admin/users/",
            "/admin//users",
            "/admin/users/../audit",
            "/admin/%75sers",
            "/admin/users/disable/x",
            "/ADMIN",
        ] {
            assert_eq!(Route::parse(path), Route::NotFound, "{path}");
        }
    }

    #[test]
    fn admin_cookies_are_scoped_to_the_console() {
        assert_eq!(
            admin_cookie(COOKIE, "tok", None),
            "cm_admin=tok; Path=/admin; Secure; HttpOnly; SameSite=Strict"
        );
        assert!(admin_cookie(COOKIE, "", Some(0)).ends_with("; Max-Age=0"));
    }

    fn request(method: Method, path: &str, body: &str) -> WebRequest {
        let mut req = WebRequest::get(path, "192.0.2.9:40000".parse().unwrap());
        req.method = method;
        req.body = body.as_bytes().to_vec();
        req.content_type = Some("application/x-www-form-urlencoded".into());
        req
    }

    fn ctx(req: &WebRequest) -> Ctx<'_> {
        Ctx {
            req,
            lang: Lang::Ko,
            query: Form::default(),
            now: 1000,
        }
    }

    #[test]
    fn checked_form_refuses_a_missing_or_wrong_token() {
        let store = SessionStore::new(60);
        let (_, session) = store.login("admin", std::net::IpAddr::from([192, 0, 2, 9]), 1000);
        for body in [
            "address=a%40b.c",
            "address=a%40b.c&csrf_token=",
            "csrf_token=nope",
        ] {
            let req = request(Method::Post, "/admin/users/disable", body);
            let refused = checked_form(&ctx(&req), &session).unwrap_err();
            assert_eq!(refused.status, 403, "{body}");
        }
        let body = format!("address=a%40b.c&csrf_token={}", session.csrf_token);
        let req = request(Method::Post, "/admin/users/disable", &body);
        let form = checked_form(&ctx(&req), &session).unwrap();
        assert_eq!(form.get("address"), Some("a@b.c"));
    }
}
