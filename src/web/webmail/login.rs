//! Logging in and out (R6, R8).
//!
//! Owns: the login form flow and its pre-session CSRF cookie; the decision
//! to start a session (`SessionStore::login`, which ends the user's others).
//!
//! Invariants:
//! - The CSRF token is checked before the password is looked at.
//! - A wrong password and an unknown address give the same message and
//!   status, so the page never tells whether an account exists; the
//!   directory says "disabled" only when the password was right.
//! - The password is never logged, echoed or kept; the address is echoed
//!   back into the form only through askama's escaping.
//!
//! Reads untrusted input: the login form (address, password, token).

use super::pages::{self, Chrome, LoginPage, Problem};
use super::{clear_session, form_problem, Ctx, NoSession, Webmail};
use crate::directory::snapshot::AuthOutcome;
use crate::web::csrf;
use crate::web::http::{session_cookie, Reply};
use crate::web::session;

/// Longest address or password we pass to the directory.
const MAX_FIELD: usize = 1024;

/// `GET /login`: the form (or the inbox, when already logged in).
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>) -> Reply {
    match webmail.session_state(ctx) {
        Ok(_) => Reply::see_other("/mail"),
        Err(NoSession::NoCookie) => page(ctx, 200, "", None, None),
        Err(NoSession::Stale(notice)) => clear_session(page(ctx, 200, "", notice, None)),
    }
}

/// The login page with an optional notice or error. Reuses the browser's
/// login token when it has a well-formed one (several tabs), else sets one.
pub fn page(
    ctx: &Ctx<'_>,
    status: u16,
    address: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Reply {
    let existing = ctx.req.cookie(csrf::LOGIN_COOKIE).filter(|t| {
        t.len() == 43
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    });
    let token = existing.map(str::to_string).unwrap_or_else(csrf::new_token);
    let t = ctx.lang.catalog();
    let login = LoginPage {
        t,
        chrome: Chrome::new(t, "login.title", "/login", None),
        csrf_token: token.clone(),
        address: address.to_string(),
        notice,
        error,
    };
    let reply = pages::render(status, &login);
    if existing.is_some() {
        reply
    } else {
        reply.with_header(
            "Set-Cookie",
            session_cookie(csrf::LOGIN_COOKIE, &token, None),
        )
    }
}

/// `POST /login`.
pub fn submit(webmail: &Webmail, ctx: &Ctx<'_>) -> Reply {
    let form = match ctx.req.body_form() {
        Ok(form) => form,
        Err(err) => return form_problem(ctx.lang, &err),
    };
    let t = ctx.lang.catalog();
    let address = form.get("address").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    let expected = ctx.req.cookie(csrf::LOGIN_COOKIE).unwrap_or("");
    if !csrf::matches(expected, form.get(csrf::FIELD)) {
        let error = Some(t.get("login.form_expired").to_string());
        // A fresh token: drop the old cookie so `page` issues a new one.
        return page_with_new_token(ctx, 403, address, error);
    }
    if address.is_empty() || password.is_empty() {
        return page(
            ctx,
            400,
            address,
            None,
            Some(t.get("login.missing").to_string()),
        );
    }
    if address.len() > MAX_FIELD || password.len() > MAX_FIELD {
        return page(
            ctx,
            401,
            "",
            None,
            Some(t.get("login.bad_credentials").to_string()),
        );
    }
    let client = ctx.req.client.ip();
    match webmail.directory.authenticate(address, password) {
        Ok(AuthOutcome::Accepted(user)) => {
            // The login goes into the store's log first: the peer node ends
            // this user's session there (R6) and the history shows it.
            let stamp = match webmail
                .store
                .record_login(&user, &client.to_string(), ctx.now)
            {
                Ok(stamp) => Some(stamp),
                Err(err) => {
                    tracing::error!(%err, user = %user, "login not recorded in the store");
                    None
                }
            };
            let (token, _) = webmail
                .sessions
                .login_stamped(&user, client, ctx.now, stamp);
            tracing::info!(user = %user, ip = %client, "webmail login");
            Reply::see_other("/mail")
                .with_header("Set-Cookie", session_cookie(session::COOKIE, &token, None))
                .with_header(
                    "Set-Cookie",
                    session_cookie(csrf::LOGIN_COOKIE, "", Some(0)),
                )
        }
        Ok(AuthOutcome::BadCredentials) => {
            tracing::info!(ip = %client, "webmail login failed: bad credentials");
            page(
                ctx,
                401,
                address,
                None,
                Some(t.get("login.bad_credentials").to_string()),
            )
        }
        Ok(AuthOutcome::Disabled) => {
            tracing::info!(ip = %client, "webmail login refused: account disabled");
            page(
                ctx,
                401,
                address,
                None,
                Some(t.get("login.disabled").to_string()),
            )
        }
        Err(err) => {
            tracing::error!(%err, "directory failed during webmail login");
            page(
                ctx,
                503,
                address,
                None,
                Some(t.get("login.unavailable").to_string()),
            )
        }
    }
}

fn page_with_new_token(ctx: &Ctx<'_>, status: u16, address: &str, error: Option<String>) -> Reply {
    let mut req = ctx.req.clone();
    req.cookies = strip_cookie(&req.cookies, csrf::LOGIN_COOKIE);
    let fresh = Ctx {
        req: &req,
        lang: ctx.lang,
        query: ctx.query.clone(),
        now: ctx.now,
    };
    page(&fresh, status, address, None, error)
}

/// The cookie header without any cookie called `name`.
fn strip_cookie(cookies: &str, name: &str) -> String {
    cookies
        .split(';')
        .filter(|pair| pair.trim().split('=').next() != Some(name))
        .collect::<Vec<_>>()
        .join(";")
}

/// `POST /logout`: ends the session (after the CSRF check), back to login.
pub fn logout(webmail: &Webmail, ctx: &Ctx<'_>) -> Reply {
    let form = match ctx.req.body_form() {
        Ok(form) => form,
        Err(err) => return form_problem(ctx.lang, &err),
    };
    let Some(token) = ctx.req.cookie(session::COOKIE) else {
        return Reply::see_other("/login");
    };
    let session = match webmail.sessions.lookup(token, ctx.now) {
        session::SessionLookup::Active(session) => session,
        // Already ended: nothing to end, and nothing to forge.
        _ => return clear_session(Reply::see_other("/login")),
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        return pages::problem(ctx.lang, Problem::FormExpired, None);
    }
    webmail.sessions.logout(token);
    tracing::info!(user = %session.user, ip = %ctx.req.client.ip(), "webmail logout");
    clear_session(Reply::see_other("/login"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_cookie_removes_only_that_cookie() {
        assert_eq!(
            strip_cookie("a=1; cm_login_csrf=x; b=2", "cm_login_csrf"),
            "a=1; b=2"
        );
        assert_eq!(
            strip_cookie("cm_login_csrfx=1", "cm_login_csrf"),
            "cm_login_csrfx=1"
        );
    }
}
