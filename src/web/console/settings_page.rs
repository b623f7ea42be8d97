//! The console's settings page (`/admin/settings`): the settings that are
//! safe to change while the appliance runs (the server's default mailbox
//! limits, how long Trash and Junk keep mail), each shown with the value
//! in force and where it comes from.
//!
//! Owns: the form and its messages. The values live in the directory
//! (`directory::appliance_settings`), travel to the peer node, and apply
//! at once: deliveries, the webmail's quota bar and the purger read them
//! at use time.
//!
//! Invariants: the CSRF token is checked before any field is read; nothing
//! is saved unless every field is valid; each save is audited with what it
//! set.
//!
//! Reads untrusted input: the form of a signed-in admin.

use askama::Template;

use super::directory_routes::{field, Outcome};
use super::directory_views::{chrome, page};
use super::pages::ConsoleChrome;
use super::{checked_form, Console, Ctx};
use crate::directory::appliance_settings::{ApplianceSettings, MAX_PURGE_DAYS};
use crate::directory::commands::{parse_bytes_limit, parse_messages_limit};
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;

pub const PATH: &str = "/admin/settings";
/// The form's fields, in the page's order.
const FIELDS: [&str; 4] = [
    "default_quota",
    "default_quota_messages",
    "purge_trash_days",
    "purge_junk_days",
];

/// One setting on the page.
pub struct SettingRow {
    /// Form field name.
    pub name: &'static str,
    pub label: String,
    /// What the field holds now ("" = follows appliance.toml).
    pub value: String,
    /// The value in force, and where it comes from, in words.
    pub in_force: String,
    pub hint: String,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    csrf_token: String,
    message: Option<String>,
    error: Option<String>,
    rows: Vec<SettingRow>,
}

/// `GET /admin/settings`.
pub fn show(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    render(console, ctx, session, None, None)
}

fn days_text(t: &Catalog, secs: u64) -> String {
    match secs / 86_400 {
        0 => t.get("cset.kept_forever").to_string(),
        d => t.fill("cset.days", &[("days", &d.to_string())]),
    }
}

fn limit_text(t: &Catalog, n: u64, bytes: bool) -> String {
    match n {
        0 => t.get("cdir.no_limit").to_string(),
        n if bytes => super::user_edit::bytes_text(n),
        n => n.to_string(),
    }
}

/// The page; `typed` keeps what a refused form held.
fn render(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    outcome: Option<Outcome>,
    typed: Option<[String; 4]>,
) -> Reply {
    let t = ctx.lang.catalog();
    let set = console.directory.appliance_settings();
    let now = set.effective(&console.mailbox);
    let purge_hint = t.fill("cset.purge_hint", &[("max", &MAX_PURGE_DAYS.to_string())]);
    // (label, what is set here, the value in force in words, hint), in
    // the order of `FIELDS`.
    let settings: [(&str, Option<u64>, String, String); 4] = [
        (
            "cset.default_quota",
            set.default_quota_bytes,
            limit_text(t, now.default_quota_bytes, true),
            t.get("cset.default_quota_hint").to_string(),
        ),
        (
            "cset.default_quota_messages",
            set.default_quota_messages,
            limit_text(t, now.default_quota_messages, false),
            t.get("cset.default_quota_messages_hint").to_string(),
        ),
        (
            "cset.purge_trash",
            set.purge_trash_days.map(u64::from),
            days_text(t, now.purge_trash.as_secs()),
            purge_hint.clone(),
        ),
        (
            "cset.purge_junk",
            set.purge_junk_days.map(u64::from),
            days_text(t, now.purge_junk.as_secs()),
            purge_hint,
        ),
    ];
    let rows = FIELDS
        .iter()
        .zip(settings)
        .enumerate()
        .map(|(i, (name, (label, here, in_force, hint)))| {
            let source = if here.is_some() {
                "cset.from_console"
            } else {
                "cset.from_file"
            };
            SettingRow {
                name,
                label: t.get(label).to_string(),
                value: match &typed {
                    Some(typed) => typed[i].clone(),
                    None => here.map(|n| n.to_string()).unwrap_or_default(),
                },
                in_force: t.fill(
                    "cset.in_force",
                    &[("value", &in_force), ("source", t.get(source))],
                ),
                hint,
            }
        })
        .collect();
    let status = outcome.as_ref().map_or(200, Outcome::status);
    let (message, error) = outcome.map_or((None, None), Outcome::texts);
    page(
        status,
        &SettingsPage {
            t,
            chrome: chrome(ctx, "cset.title", PATH, session),
            csrf_token: session.csrf_token.clone(),
            message,
            error,
            rows,
        },
    )
}

/// A purge period in days: "" or "default" = the file's, else 0..=MAX.
fn parse_days(text: &str) -> Result<Option<u32>, ()> {
    if text.is_empty() || text.eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(d) if d <= MAX_PURGE_DAYS => Ok(Some(d)),
        _ => Err(()),
    }
}

/// `POST /admin/settings`: checks every field, then saves them together.
pub fn save(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let typed = FIELDS.map(|n| field(&form, n).map(str::to_string));
    if typed.iter().any(Option::is_none) {
        let failed = Outcome::Failed(400, t.get("console.err_too_long").to_string());
        return render(console, ctx, session, Some(failed), None);
    }
    let typed = typed.map(Option::unwrap_or_default);
    let limit_of = |text: &str, parse: fn(&str) -> Result<Option<u64>, _>| {
        if text.is_empty() {
            Ok(None)
        } else {
            parse(text)
        }
    };
    let refuse = |key: &str| {
        let failed = Outcome::Failed(400, t.get(key).to_string());
        render(console, ctx, session, Some(failed), Some(typed.clone()))
    };
    let Ok(default_quota_bytes) = limit_of(&typed[0], parse_bytes_limit) else {
        return refuse("cset.err_quota");
    };
    let Ok(default_quota_messages) = limit_of(&typed[1], parse_messages_limit) else {
        return refuse("cset.err_messages");
    };
    let (Ok(purge_trash_days), Ok(purge_junk_days)) =
        (parse_days(&typed[2]), parse_days(&typed[3]))
    else {
        return refuse("cset.err_days");
    };
    let settings = ApplianceSettings {
        default_quota_bytes,
        default_quota_messages,
        purge_trash_days,
        purge_junk_days,
    };
    let what = serde_json::to_string(&settings).unwrap_or_default();
    match console.directory.set_appliance_settings(settings) {
        Ok(_) => {
            console.audit(ctx, &session.user, "settings_change", &what, "ok");
            let done = Outcome::Done(t.get("cset.saved").to_string());
            render(console, ctx, session, Some(done), None)
        }
        Err(err) => {
            tracing::error!(%err, "saving appliance settings failed");
            console.audit(ctx, &session.user, "settings_change", &what, "failed");
            refuse("cset.err_save")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_days_are_empty_default_or_a_bounded_number() {
        assert_eq!(parse_days(""), Ok(None));
        assert_eq!(parse_days("default"), Ok(None));
        assert_eq!(parse_days("0"), Ok(Some(0)));
        assert_eq!(parse_days("30"), Ok(Some(30)));
        assert_eq!(parse_days("3651"), Err(()));
        assert_eq!(parse_days("-1"), Err(()));
        assert_eq!(parse_days("ten"), Err(()));
    }
}
