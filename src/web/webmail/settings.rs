//! `/mail/settings`: the user's own account: language, how the message
//! list is shown (every message, or by conversation), signature,
//! auto-reply and forwarding (`settings_forms`, saved in the directory's
//! `settings` tree), recent logins (time and address, from either node of
//! the pair, newest first) and changing the password.
//!
//! Invariants:
//! - The CSRF token is checked before any field is read further.
//! - Settings are saved only through `Directory::set_user_settings`, which
//!   checks them; a refusal shows the form again with what was typed and
//!   a message naming the problem.
//! - The password changes only after the current password is verified
//!   (argon2, the same check as the login), and the new one is typed twice.
//! - Changing it ends no session here (this one stays logged in); the new
//!   hash travels to the peer node as a directory change.
//!
//! Reads untrusted input: yes, every form field.

use askama::Template;

use super::list_query::ListView;
use super::mailbox::{user_bar, user_folders};
use super::pages::{self, Chrome, Problem};
use super::settings_forms::{self, Section, SettingsView};
use super::{Ctx, Webmail};
use crate::directory::settings::UserSettings;
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
    pub form: SettingsView,
    pub hint_signature: String,
    pub hint_vacation_text: String,
    pub hint_period: String,
}

/// The page; `shown` are the settings in the forms (what was typed, after
/// a refusal), else the saved ones.
fn render(
    webmail: &Webmail,
    ctx: &Ctx<'_>,
    session: &Session,
    notice: Option<String>,
    error: Option<String>,
    shown: Option<UserSettings>,
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
    let shown = match shown {
        Some(s) => s,
        None => webmail
            .directory
            .user_settings(&session.user)
            .unwrap_or_else(|err| {
                tracing::error!(%err, "user settings unreadable");
                UserSettings::default()
            }),
    };
    let form = SettingsView::of(&shown);
    let folders = user_folders(webmail, &session.user);
    let bar = user_bar(webmail, t, session, &folders, None);
    let page = SettingsPage {
        t,
        chrome: Chrome::new(t, "settings.title", PATH, Some(bar)),
        csrf_token: session.csrf_token.clone(),
        logins,
        notice,
        error: error.clone(),
        hint_signature: t.fill(
            "settings.signature_hint",
            &[("max", &form.max_signature.to_string())],
        ),
        hint_vacation_text: t.fill(
            "settings.vacation_text_hint",
            &[("max", &form.max_text.to_string())],
        ),
        hint_period: t.fill(
            "settings.vacation_period_hint",
            &[("max", &form.max_period.to_string())],
        ),
        form,
    };
    pages::render(if error.is_some() { 400 } else { 200 }, &page)
}

/// The view `/mail` opens in when the link names none: the one saved in
/// the user's settings (the flat list when unreadable, logged: the mail
/// matters more than the choice).
pub(super) fn saved_list_view(webmail: &Webmail, user: &str) -> ListView {
    match webmail.directory.user_settings(user) {
        Ok(settings) if settings.list_by_conversation => ListView::Conversations,
        Ok(_) => ListView::Messages,
        Err(err) => {
            tracing::error!(%err, "user settings unreadable");
            ListView::Messages
        }
    }
}

/// `GET /mail/settings[?done=password|language|list|signature|vacation|forward]`.
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let notice = match ctx.query.get("done").and_then(Section::from_name) {
        Some(Section::Password) => Some(t.get("settings.password_changed").to_string()),
        Some(Section::Vacation) => Some(t.get("settings.saved_vacation").to_string()),
        Some(Section::Forward) => Some(t.get("settings.saved_forward").to_string()),
        Some(Section::ListView) => Some(t.get("settings.saved_list_view").to_string()),
        Some(_) => Some(t.get("settings.saved").to_string()),
        None => None,
    };
    render(webmail, ctx, session, notice, None, None)
}

/// `POST /mail/settings`: save one form (`section`), or change the password.
pub fn submit(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match ctx.req.body_form() {
        Ok(form) => form,
        Err(err) => return super::form_problem(ctx.lang, &err),
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        return pages::problem(ctx.lang, Problem::FormExpired, None);
    }
    match Section::of(&form) {
        Some(Section::Password) => change_password(webmail, ctx, session, &form),
        Some(section) => save(webmail, ctx, session, section, &form),
        None => pages::problem(ctx.lang, Problem::BadRequest, None),
    }
}

/// Saves the settings of one form, or shows it again with the problem.
fn save(
    webmail: &Webmail,
    ctx: &Ctx<'_>,
    session: &Session,
    section: Section,
    form: &crate::web::form::Form,
) -> Reply {
    let saved = match webmail.directory.user_settings(&session.user) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(%err, "user settings unreadable");
            return pages::problem(ctx.lang, Problem::Internal, None);
        }
    };
    let wanted = settings_forms::apply(section, form, saved);
    match webmail
        .directory
        .set_user_settings(&session.user, wanted.clone())
    {
        Ok(_) => {
            tracing::info!(user = %session.user, section = section.name(), "settings saved");
            Reply::see_other(&format!("{PATH}?done={}", section.name()))
        }
        Err(DirectoryError::Settings(problem)) => {
            // The page in the language the user has now, not the one
            // that was refused.
            let t = ctx.lang.catalog();
            let max = crate::directory::settings::MAX_PERIOD_DAYS.to_string();
            let error = Some(t.fill(problem.catalog_key(), &[("max", &max)]));
            render(webmail, ctx, session, None, error, Some(wanted))
        }
        Err(err) => {
            tracing::error!(%err, "saving user settings failed");
            pages::problem(ctx.lang, Problem::Internal, None)
        }
    }
}

fn change_password(
    webmail: &Webmail,
    ctx: &Ctx<'_>,
    session: &Session,
    form: &crate::web::form::Form,
) -> Reply {
    let t = ctx.lang.catalog();
    let refuse = |key: &str| {
        render(
            webmail,
            ctx,
            session,
            None,
            Some(t.get(key).to_string()),
            None,
        )
    };
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

#[cfg(test)]
mod tests {
    use crate::directory::settings::SettingsProblem;
    use crate::web::i18n::Lang;

    #[test]
    fn every_settings_problem_has_a_message_in_both_languages() {
        for lang in [Lang::Ko, Lang::En] {
            let t = lang.catalog();
            for problem in SettingsProblem::ALL {
                let key = problem.catalog_key();
                assert_ne!(t.get(key), key, "{key} missing in {}", lang.code());
            }
            for key in [
                "settings.saved",
                "settings.saved_vacation",
                "settings.saved_forward",
                "settings.saved_list_view",
                "settings.list_view_title",
            ] {
                assert_ne!(t.get(key), key);
            }
        }
    }
}
