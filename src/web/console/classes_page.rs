//! The console's classes page (`/admin/classes`): the licence view (seats
//! per class, R12), defining a class and changing its defaults and rule,
//! and running the lifecycle check now.
//!
//! Owns: nothing; changes go through `directory::commands` and are audited.
//!
//! Invariants: the seat counts are every user's, enabled and disabled
//! apart, whatever class they name (defined or not).
//!
//! Reads untrusted input: the forms of a signed-in admin.

use super::directory_routes::{explain, field, run, Outcome};
use super::directory_views::{chrome, page, ClassRow, ClassesPage};
use super::pages::{self, Problem};
use super::{checked_form, Console, Ctx};
use crate::directory::commands::{ClassSettings, DirectoryCommand};
use crate::web::form::Form;
use crate::web::http::Reply;
use crate::web::session::Session;

/// `GET /admin/classes`.
pub fn show(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    render(console, ctx, session, None)
}

fn render(console: &Console, ctx: &Ctx<'_>, session: &Session, outcome: Option<Outcome>) -> Reply {
    let t = ctx.lang.catalog();
    let seats = match console.directory.seats() {
        Ok(seats) => seats,
        Err(err) => {
            tracing::error!(%err, "directory failed counting seats");
            return pages::problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    let limit = |v: Option<u64>, bytes: bool| match v {
        None => t.get("cdir.default_limit").to_string(),
        Some(0) => t.get("cdir.no_limit").to_string(),
        Some(n) if bytes => super::user_edit::bytes_text(n),
        Some(n) => n.to_string(),
    };
    let mut total = (0, 0);
    let mut defined = Vec::new();
    let rows = seats
        .into_iter()
        .map(|s| {
            total.0 += s.enabled;
            total.1 += s.disabled;
            let (quota_text, rule_text) = match &s.record {
                Some(c) => {
                    defined.push(c.name.clone());
                    (
                        t.fill(
                            "cdir.quota_text",
                            &[
                                ("bytes", &limit(c.quota_bytes, true)),
                                ("messages", &limit(c.quota_messages, false)),
                            ],
                        ),
                        match c.disable_after_days {
                            None => t.get("cdir.rule_never").to_string(),
                            Some(d) => t.fill("cdir.rule_days", &[("days", &d.to_string())]),
                        },
                    )
                }
                None => (String::new(), String::new()),
            };
            ClassRow {
                name: s.class,
                defined: s.record.is_some(),
                quota_text,
                rule_text,
                seats_text: t.fill(
                    "cdir.seats_cell",
                    &[
                        ("enabled", &s.enabled.to_string()),
                        ("disabled", &s.disabled.to_string()),
                        ("total", &(s.enabled + s.disabled).to_string()),
                    ],
                ),
            }
        })
        .collect();
    let seats_text = t.fill(
        "cdir.seats_text",
        &[
            ("enabled", &total.0.to_string()),
            ("disabled", &total.1.to_string()),
        ],
    );
    let status = outcome.as_ref().map_or(200, Outcome::status);
    let (message, error) = outcome.map_or((None, None), Outcome::texts);
    page(
        status,
        &ClassesPage {
            t,
            chrome: chrome(ctx, "cdir.classes_title", "/admin/classes", session),
            csrf_token: session.csrf_token.clone(),
            message,
            error,
            rows,
            defined,
            seats_text,
        },
    )
}

/// The class settings of a form: empty fields are left unchanged.
fn settings(form: &Form) -> Option<ClassSettings> {
    let get = |name| field(form, name).map(|v| (!v.is_empty()).then(|| v.to_string()));
    Some(ClassSettings {
        quota_bytes: get("quota_bytes")?,
        quota_messages: get("quota_messages")?,
        disable_after_days: get("disable_after_days")?,
    })
}

fn change(console: &Console, ctx: &Ctx<'_>, session: &Session, adding: bool) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let (Some(name), Some(settings)) = (field(&form, "name"), settings(&form)) else {
        let failed = Outcome::Failed(400, t.get("console.err_too_long").to_string());
        return render(console, ctx, session, Some(failed));
    };
    if name.is_empty() {
        let failed = Outcome::Failed(400, t.get("cdir.err_class_name").to_string());
        return render(console, ctx, session, Some(failed));
    }
    let (command, action, key) = if adding {
        let c = DirectoryCommand::ClassAdd {
            name: name.to_string(),
            settings,
        };
        (c, "class_add", "cdir.class_added")
    } else {
        let c = DirectoryCommand::ClassSet {
            name: name.to_string(),
            settings,
        };
        (c, "class_set", "cdir.class_changed")
    };
    let target = name.to_lowercase();
    let outcome = match run(console, ctx, session, &command, action, &target) {
        Ok(_) => Outcome::Done(t.fill(key, &[("class", &target)])),
        Err(failed) => failed,
    };
    render(console, ctx, session, Some(outcome))
}

/// `POST /admin/classes` (name, quota_bytes, quota_messages, disable_after_days).
pub fn add(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    change(console, ctx, session, true)
}

/// `POST /admin/classes/set` (the same fields; empty ones stay as they are).
pub fn set(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    change(console, ctx, session, false)
}

/// `POST /admin/classes/check`: runs the lifecycle rule now.
pub fn check_now(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    if let Err(reply) = checked_form(ctx, session) {
        return reply;
    }
    let t = ctx.lang.catalog();
    let outcome = match console.lifecycle_check(&session.user, ctx.ip()) {
        Ok(disabled) => {
            console.audit(ctx, &session.user, "lifecycle_check", "", "ok");
            if disabled.is_empty() {
                Outcome::Done(t.get("cdir.check_none").to_string())
            } else {
                Outcome::Done(t.fill(
                    "cdir.check_disabled",
                    &[
                        ("count", &disabled.len().to_string()),
                        ("users", &disabled.join(", ")),
                    ],
                ))
            }
        }
        Err(err) => {
            let (status, code, text) = explain(ctx, &err, "");
            console.audit(ctx, &session.user, "lifecycle_check", "", code);
            Outcome::Failed(status, text)
        }
    };
    render(console, ctx, session, Some(outcome))
}
