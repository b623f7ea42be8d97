//! Admin login and logout.
//!
//! Owns: the admin login form flow, its pre-session CSRF cookie
//! (`cm_admin_login_csrf`, `Path=/admin`), and the decision to start an
//! admin session in the console's own `SessionStore` (one per admin: a new
//! login ends the admin's other session).
//!
//! Invariants:
//! - The CSRF token is checked before the password is looked at.
//! - A wrong name or password gives one message and status, and no session.
//! - Every attempt that reached the password check is audited, success or
//!   not; the password is never logged, audited, echoed or kept.
//!
//! Reads untrusted input: the login form (name, password, token) and the
//! login CSRF cookie.

use super::pages;
use super::{admin_cookie, checked_form, form_problem, Console, Ctx, COOKIE, LOGIN_CSRF_COOKIE};
use crate::web::csrf;
use crate::web::http::Reply;
use crate::web::session::Session;

/// Longest name or password passed to the directory.
const MAX_FIELD: usize = 1024;
/// Longest failed-login name written to the audit log.
const MAX_AUDITED_NAME: usize = 64;

/// `GET /admin/login`: the form, or the dashboard when already signed in.
pub fn show(console: &Console, ctx: &Ctx<'_>) -> Reply {
    match console.admin_session(ctx) {
        Some(_) => Reply::see_other("/admin"),
        None => page(ctx, 200, None, true),
    }
}

/// The login page. Reuses the browser's login token when it sent a
/// well-formed one (several tabs) unless `fresh`, else sets a new one.
fn page(ctx: &Ctx<'_>, status: u16, error: Option<String>, reuse: bool) -> Reply {
    let existing = ctx
        .req
        .cookie(LOGIN_CSRF_COOKIE)
        .filter(|t| reuse && well_formed(t));
    let token = existing.map(str::to_string).unwrap_or_else(csrf::new_token);
    let reply = pages::login(ctx, status, &token, error);
    if existing.is_some() {
        reply
    } else {
        reply.with_header("Set-Cookie", admin_cookie(LOGIN_CSRF_COOKIE, &token, None))
    }
}

fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// `POST /admin/login`.
pub fn submit(console: &Console, ctx: &Ctx<'_>) -> Reply {
    let form = match ctx.req.body_form() {
        Ok(form) => form,
        Err(err) => return form_problem(ctx.lang, &err),
    };
    let t = ctx.lang.catalog();
    let expected = ctx.req.cookie(LOGIN_CSRF_COOKIE).unwrap_or("");
    if !csrf::matches(expected, form.get(csrf::FIELD)) {
        tracing::warn!(ip = %ctx.ip(), "admin login refused: CSRF token mismatch");
        let error = Some(t.get("console.login_expired").to_string());
        return page(ctx, 403, error, false);
    }
    let name = form.get("name").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    if name.is_empty() || password.is_empty() {
        let error = Some(t.get("console.login_missing").to_string());
        return page(ctx, 400, error, true);
    }
    let audited_name: String = name.chars().take(MAX_AUDITED_NAME).collect();
    let accepted = if name.len() > MAX_FIELD || password.len() > MAX_FIELD {
        Ok(false)
    } else {
        console.directory.authenticate_admin(name, password)
    };
    match accepted {
        Ok(true) => {
            let (token, _) = console.admins.login(name, ctx.ip(), ctx.now);
            console.audit(ctx, name, "login", "", "ok");
            tracing::info!(admin = %name, ip = %ctx.ip(), "console login");
            Reply::see_other("/admin")
                .with_header("Set-Cookie", admin_cookie(COOKIE, &token, None))
                .with_header("Set-Cookie", admin_cookie(LOGIN_CSRF_COOKIE, "", Some(0)))
        }
        Ok(false) => {
            console.audit(ctx, &audited_name, "login", "", "wrong_password");
            tracing::warn!(ip = %ctx.ip(), "console login failed: bad credentials");
            let error = Some(t.get("console.login_bad").to_string());
            page(ctx, 401, error, true)
        }
        Err(err) => {
            console.audit(ctx, &audited_name, "login", "", "directory_error");
            tracing::error!(%err, "directory failed during console login");
            let error = Some(t.get("console.login_unavailable").to_string());
            page(ctx, 503, error, true)
        }
    }
}

/// `POST /admin/logout`: ends the admin session (after the CSRF check).
pub fn logout(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    if let Err(reply) = checked_form(ctx, session) {
        return reply;
    }
    if let Some(token) = ctx.req.cookie(COOKIE) {
        console.admins.logout(token);
    }
    console.audit(ctx, &session.user, "logout", "", "ok");
    tracing::info!(admin = %session.user, ip = %ctx.ip(), "console logout");
    Reply::see_other("/admin/login").with_header("Set-Cookie", admin_cookie(COOKIE, "", Some(0)))
}
