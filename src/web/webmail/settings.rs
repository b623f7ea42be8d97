//! `/mail/settings`: the user's own account: recent logins (time and
//! address, from either node of the pair, newest first) and changing the
//! password.
//!
//! Invariants:
//! - The CSRF token is checked before any field is read further.
//! - The password changes only after the current password is verified
//!   (argon2, the same check as the login), and the new one is typed twice.
//! - Changing it ends no session here (this one stays logged in); the new
//!   hash travels to the peer node as a directory change.
//!
//! Reads untrusted input: yes, the form's three password fields.

use askama::Template;

use super::mailbox::{user_bar, user_folders};
use super::pages::{self, Chrome, Problem};
use super::{Ctx, Webmail};
use crate::directory::snapshot::AuthOutcome;
use crate::directory::{password::PasswordError, DirectoryError};
use crate::web::csrf;
use crate::web::format;
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;

pub const PATH: &str = "/mail/settings";
/// Logins shown.
const HISTORY: usize = 20;

pub struct LoginRow {
    pub when: String,
    pub iso: String,
    pub ip: String,
}

#[derive(Template)]
#[template(path = "webmail/settings.html")]
pub struct SettingsPage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    pub csrf_token: String,
    pub logins: Vec<LoginRow>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

fn render(
    webmail: &Webmail,
    ctx: &Ctx<'_>,
    session: &Session,
    notice: Option<String>,
    error: Option<String>,
) -> Reply {
    let t = ctx.lang.catalog();
    let logins = match webmail.store.login_history(&session.user, HISTORY) {
        Ok(history) => history
            .into_iter()
            .map(|l| LoginRow {
                when: format::date_time(l.at),
                iso: format::iso(l.at),
                ip: l.ip,
            })
            .collect(),
        Err(err) => {
            tracing::error!(%err, "login history failed");
            Vec::new()
        }
    };
    let folders = user_folders(webmail, &session.user);
    let bar = user_bar(webmail, t, session, &folders, None);
    let page = SettingsPage {
        t,
        chrome: Chrome::new(t, "settings.title", PATH, Some(bar)),
        csrf_token: session.csrf_token.clone(),
        logins,
        notice,
        error: error.clone(),
    };
    pages::render(if error.is_some() { 400 } else { 200 }, &page)
}

/// `GET /mail/settings[?done=password]`.
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let notice = (ctx.query.get("done") == Some("password"))
        .then(|| t.get("settings.password_changed").to_string());
    render(webmail, ctx, session, notice, None)
}

/// `POST /mail/settings`: change the password.
pub fn submit(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match ctx.req.body_form() {
        Ok(form) => form,
        Err(err) => return super::form_problem(ctx.lang, &err),
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        return pages::problem(ctx.lang, Problem::FormExpired, None);
    }
    let t = ctx.lang.catalog();
    let refuse = |key: &str| render(webmail, ctx, session, None, Some(t.get(key).to_string()));
    let current = form.get("current").unwrap_or("");
    let new = form.get("new").unwrap_or("");
    if new != form.get("again").unwrap_or("") {
        return refuse("settings.err_mismatch");
    }
    match webmail.directory.authenticate(&session.user, current) {
        Ok(AuthOutcome::Accepted(_)) => {}
        Ok(_) => {
            tracing::warn!(user = %session.user, ip = %ctx.ip(), "password change refused: wrong current password");
            return refuse("settings.err_current");
        }
        Err(err) => {
            tracing::error!(%err, "directory failed checking a password");
            return pages::problem(ctx.lang, Problem::Internal, None);
        }
    }
    match webmail.directory.set_password(&session.user, new) {
        Ok(()) => {
            tracing::info!(user = %session.user, ip = %ctx.ip(), "password changed in the webmail");
            Reply::see_other(&format!("{PATH}?done=password"))
        }
        Err(DirectoryError::Password(PasswordError::TooShort)) => refuse("settings.err_short"),
        Err(err) => {
            tracing::error!(%err, "directory failed setting a password");
            pages::problem(ctx.lang, Problem::Internal, None)
        }
    }
}
