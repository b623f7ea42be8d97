//! The console's queue pages (R4, R17): the queue per lane with a search by
//! sender, recipient and state; hold, release and retry; delete after the
//! admin's password is typed again (a destructive step).
//!
//! Owns: turning the engine's listing and action outcomes into the page's
//! rows and plain-words messages, and their audit codes.
//!
//! Invariants:
//! - The queue is reached only through `ops::engine_report::EngineLink`
//!   (`engine.sock`), like the CLI: the engine alone changes its queue.
//! - Every POST checks the session's CSRF token first (`checked_form`);
//!   the id is checked with `QueueId::parse` before it is sent anywhere.
//! - Every action is audited (`queue_hold`, `queue_release`, `queue_retry`,
//!   `queue_delete`) with the id and outcome before the reply, including a
//!   delete refused for a wrong password. The password is never logged,
//!   audited or echoed.
//!
//! Reads untrusted input: query (lane, q, status) and forms (id, action,
//! password) from a signed-in admin.

use askama::Template;

use super::pages::{problem, ConsoleChrome, Problem};
use super::{checked_form, Console, Ctx};
use crate::engine::queue::{QueueId, QueueLane};
use crate::ops::engine_report::{
    ActOutcome, EngineLinkError, ListingFilter, MessageStatus, QueueAction, QueuedMessage,
};
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;
use crate::web::webmail::pages::render;

/// Longest search text or password taken.
const MAX_FIELD: usize = 1024;

pub struct Choice {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

/// One lane's size above the list, linking to that lane alone.
pub struct LaneSummary {
    pub href: String,
    pub label: String,
    pub text: String,
}

pub struct Row {
    pub id: String,
    pub lane: &'static str,
    pub sender: String,
    pub recipients: String,
    pub pending: String,
    pub arrived: String,
    pub size: String,
    pub status: String,
    pub next: String,
    pub error: String,
    pub held: bool,
    pub sending: bool,
}

#[derive(Template)]
#[template(path = "console/queues.html")]
struct QueuesPage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    csrf_token: String,
    lanes: Vec<Choice>,
    statuses: Vec<Choice>,
    summaries: Vec<LaneSummary>,
    query: String,
    /// The current filter as a query string, to come back to after an action.
    back: String,
    rows: Vec<Row>,
    count_text: String,
    more_text: Option<String>,
    message: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/queue_delete.html")]
struct DeletePage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    csrf_token: String,
    id: String,
    warning: String,
    error: Option<String>,
    row: Option<Row>,
}

/// The filter a request asks for (unknown values are "any").
struct Filter {
    lane: Option<QueueLane>,
    text: String,
    status: Option<MessageStatus>,
}

impl Filter {
    fn from(get: impl Fn(&str) -> Option<String>) -> Filter {
        Filter {
            lane: match get("lane").as_deref() {
                Some("normal") => Some(QueueLane::Normal),
                Some("bulk") => Some(QueueLane::Bulk),
                _ => None,
            },
            text: get("q")
                .unwrap_or_default()
                .trim()
                .chars()
                .take(MAX_FIELD)
                .collect(),
            status: get("status").as_deref().and_then(MessageStatus::parse),
        }
    }

    fn query_string(&self) -> String {
        let mut parts = Vec::new();
        if let Some(lane) = self.lane {
            parts.push(format!("lane={}", lane.name()));
        }
        if !self.text.is_empty() {
            parts.push(format!("q={}", crate::web::form::encode(&self.text)));
        }
        if let Some(status) = self.status {
            parts.push(format!("status={}", status.name()));
        }
        parts.join("&")
    }
}

/// `GET /admin/queues?lane=&q=&status=`.
pub fn list(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let filter = Filter::from(|k| ctx.query.get(k).map(str::to_string));
    page(console, ctx, session, &filter, 200, None, None)
}

fn page(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    filter: &Filter,
    status: u16,
    message: Option<String>,
    error: Option<String>,
) -> Reply {
    let t = ctx.lang.catalog();
    let listing = console.monitor.engine().listing(ListingFilter {
        lane: filter.lane,
        text: filter.text.clone(),
        status: filter.status,
        id: None,
    });
    let (rows, matched, error, status) = match listing {
        Ok(listing) => (
            listing
                .messages
                .iter()
                .map(|m| row(t, m, ctx.now))
                .collect::<Vec<_>>(),
            listing.matched,
            error,
            status,
        ),
        Err(err) => {
            tracing::warn!(%err, "console: the queue cannot be listed");
            (Vec::new(), 0, Some(engine_problem(t, &err)), 503)
        }
    };
    let shown = rows.len();
    let summaries = match console.monitor.engine().report() {
        Ok(report) => report
            .lanes
            .iter()
            .map(|l| LaneSummary {
                href: format!("/admin/queues?lane={}", l.lane.name()),
                label: t.get(&format!("ops.lane_{}", l.lane.name())).to_string(),
                text: t.fill(
                    "ops.lane_summary",
                    &[
                        ("messages", &l.messages.to_string()),
                        ("pending", &l.pending_recipients.to_string()),
                        ("held", &l.held.to_string()),
                    ],
                ),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let lane_choice = |value: &'static str, key: &str, lane: Option<QueueLane>| Choice {
        value,
        label: t.get(key).to_string(),
        selected: filter.lane == lane,
    };
    let mut statuses = vec![Choice {
        value: "",
        label: t.get("ops.status_any").to_string(),
        selected: filter.status.is_none(),
    }];
    statuses.extend(MessageStatus::ALL.into_iter().map(|s| Choice {
        value: s.name(),
        label: status_label(t, s),
        selected: filter.status == Some(s),
    }));
    let page = QueuesPage {
        t,
        chrome: ConsoleChrome::new(t, "ops.queues_title", "/admin/queues", Some(session)),
        csrf_token: session.csrf_token.clone(),
        lanes: vec![
            lane_choice("", "ops.lane_all", None),
            lane_choice("normal", "ops.lane_normal", Some(QueueLane::Normal)),
            lane_choice("bulk", "ops.lane_bulk", Some(QueueLane::Bulk)),
        ],
        statuses,
        summaries,
        query: filter.text.clone(),
        back: filter.query_string(),
        rows,
        count_text: t.fill("ops.queues_count", &[("matched", &matched.to_string())]),
        more_text: (matched > shown).then(|| {
            t.fill(
                "ops.queues_more",
                &[
                    ("shown", &shown.to_string()),
                    ("matched", &matched.to_string()),
                ],
            )
        }),
        message,
        error,
    };
    render(status, &page)
}

fn status_label(t: &Catalog, s: MessageStatus) -> String {
    t.get(&format!("ops.status_{}", s.name())).to_string()
}

fn engine_problem(t: &Catalog, err: &EngineLinkError) -> String {
    match err {
        EngineLinkError::NotRunning(_) => t.get("ops.engine_down").to_string(),
        _ => t.get("ops.act_failed").to_string(),
    }
}

fn row(t: &Catalog, m: &QueuedMessage, now: i64) -> Row {
    let next = match m.next_attempt {
        Some(at) if (at as i64) <= now => t.get("ops.next_now").to_string(),
        Some(at) => crate::web::format::date_time(at as i64),
        None => "-".into(),
    };
    Row {
        id: m.id.clone(),
        lane: m.lane.name(),
        sender: if m.sender.is_empty() {
            "<>".into()
        } else {
            m.sender.clone()
        },
        recipients: if m.recipient_count > m.recipients.len() {
            format!("{}, …", m.recipients.join(", "))
        } else {
            m.recipients.join(", ")
        },
        pending: t.fill(
            "ops.pending_of",
            &[
                ("pending", &m.pending.to_string()),
                ("total", &m.recipient_count.to_string()),
            ],
        ),
        arrived: crate::web::format::date_time(m.arrived_at as i64),
        size: crate::web::format::size(m.size),
        status: status_label(t, m.status),
        next,
        error: m.last_error.clone().unwrap_or_default(),
        held: m.status == MessageStatus::Held,
        sending: m.status == MessageStatus::Sending,
    }
}

/// The filter a POST came from (hidden `back` field), to show it again.
fn back_filter(back: Option<&str>) -> Filter {
    let form =
        crate::web::form::Form::parse(back.unwrap_or("").as_bytes(), 4096).unwrap_or_default();
    Filter::from(|k| form.get(k).map(str::to_string))
}

/// `POST /admin/queues/act` (id, action = hold|release|retry, back).
pub fn act(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let filter = back_filter(form.get("back"));
    let action = match form.get("action") {
        Some("hold") => Some(QueueAction::Hold),
        Some("release") => Some(QueueAction::Release),
        Some("retry") => Some(QueueAction::Retry),
        _ => None,
    };
    let id = form.get("id").and_then(QueueId::parse);
    let (Some(action), Some(id)) = (action, id) else {
        let error = t.get("ops.act_bad").to_string();
        return page(console, ctx, session, &filter, 400, None, Some(error));
    };
    run(console, ctx, session, &filter, id.as_str(), action)
}

/// Sends the action to the engine, audits it, and shows the queue.
fn run(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    filter: &Filter,
    id: &str,
    action: QueueAction,
) -> Reply {
    let t = ctx.lang.catalog();
    let audit_action = format!("queue_{}", action.name());
    let outcome = console.monitor.engine().act(id, action);
    let (status, message, error, code) = match outcome {
        Ok(ActOutcome::Done) => {
            let key = format!("ops.done_{}", action.name());
            (200, Some(t.fill(&key, &[("id", id)])), None, "ok")
        }
        Ok(ActOutcome::AfterAttempt) => (
            200,
            Some(t.fill("ops.after_attempt", &[("id", id)])),
            None,
            ActOutcome::AfterAttempt.code(),
        ),
        Ok(ActOutcome::Busy) => (
            409,
            None,
            Some(t.fill("ops.busy", &[("id", id)])),
            ActOutcome::Busy.code(),
        ),
        Ok(ActOutcome::NotFound) => (
            404,
            None,
            Some(t.fill("ops.not_found", &[("id", id)])),
            ActOutcome::NotFound.code(),
        ),
        Ok(ActOutcome::Failed) => (
            503,
            None,
            Some(t.get("ops.act_failed").to_string()),
            ActOutcome::Failed.code(),
        ),
        Err(err) => {
            tracing::warn!(%err, "console: queue action not delivered to the engine");
            let code = match err {
                EngineLinkError::NotRunning(_) => "engine_not_running",
                _ => "engine_error",
            };
            (503, None, Some(engine_problem(t, &err)), code)
        }
    };
    console.audit(ctx, &session.user, &audit_action, id, code);
    tracing::info!(admin = %session.user, queue_id = %id, action = action.name(), outcome = code, "console queue action");
    page(console, ctx, session, filter, status, message, error)
}

/// `GET /admin/queues/delete?id=`: what deleting means, and the password.
pub fn confirm(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    match ctx.query.get("id").and_then(QueueId::parse) {
        Some(id) => delete_page(console, ctx, session, id.as_str(), 200, None),
        None => problem(ctx.lang, Problem::BadRequest, Some(session)),
    }
}

fn delete_page(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    id: &str,
    status: u16,
    error: Option<String>,
) -> Reply {
    let t = ctx.lang.catalog();
    // The message as it stands, so the admin sees what goes.
    let found = console
        .monitor
        .engine()
        .listing(ListingFilter {
            id: Some(id.to_string()),
            ..ListingFilter::default()
        })
        .ok()
        .and_then(|l| l.messages.into_iter().find(|m| m.id == id));
    let pending = found.as_ref().map_or(0, |m| m.pending);
    let page = DeletePage {
        t,
        chrome: ConsoleChrome::new(t, "ops.delete_title", "/admin/queues", Some(session)),
        csrf_token: session.csrf_token.clone(),
        id: id.to_string(),
        warning: t.fill(
            "ops.delete_warning",
            &[("id", id), ("pending", &pending.to_string())],
        ),
        error,
        row: found.map(|m| row(t, &m, ctx.now)),
    };
    render(status, &page)
}

/// `POST /admin/queues/delete` (id, password): deletes after the admin's
/// password checks out.
pub fn delete(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let Some(id) = form.get("id").and_then(QueueId::parse) else {
        return problem(ctx.lang, Problem::BadRequest, Some(session));
    };
    let password = form.get("password").unwrap_or("");
    if password.is_empty() {
        let error = Some(t.get("ops.delete_missing_password").to_string());
        return delete_page(console, ctx, session, id.as_str(), 400, error);
    }
    let verified = password.len() <= MAX_FIELD
        && console
            .directory
            .authenticate_admin(&session.user, password)
            .unwrap_or_else(|err| {
                tracing::error!(%err, "directory failed checking the admin password");
                false
            });
    if !verified {
        console.audit(
            ctx,
            &session.user,
            "queue_delete",
            id.as_str(),
            "wrong_password",
        );
        tracing::warn!(admin = %session.user, queue_id = %id, "queue delete refused: wrong password");
        let error = Some(t.get("ops.delete_wrong_password").to_string());
        return delete_page(console, ctx, session, id.as_str(), 403, error);
    }
    let filter = Filter::from(|_| None);
    run(
        console,
        ctx,
        session,
        &filter,
        id.as_str(),
        QueueAction::Delete,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Lang;

    #[test]
    fn keys_made_from_names_exist_in_both_catalogs() {
        for lang in [Lang::Ko, Lang::En] {
            let t = lang.catalog();
            let mut keys: Vec<String> = MessageStatus::ALL
                .iter()
                .map(|s| format!("ops.status_{}", s.name()))
                .collect();
            for action in [
                QueueAction::Hold,
                QueueAction::Release,
                QueueAction::Retry,
                QueueAction::Delete,
            ] {
                keys.push(format!("ops.done_{}", action.name()));
            }
            for window in super::super::charts::Window::ALL {
                keys.push(format!("ops.range_{}", window.name()));
            }
            for key in keys {
                assert_ne!(t.get(&key), key, "{key} missing in {}", lang.code());
            }
        }
    }

    #[test]
    fn the_filter_comes_back_after_an_action() {
        let f = back_filter(Some("lane=bulk&q=a%20b&status=held"));
        assert_eq!(f.lane, Some(QueueLane::Bulk));
        assert_eq!(f.text, "a b");
        assert_eq!(f.status, Some(MessageStatus::Held));
        assert_eq!(f.query_string(), "lane=bulk&q=a%20b&status=held");
        let none = back_filter(Some("lane=nope&status=%ZZ"));
        assert_eq!(none.lane, None);
        assert_eq!(none.status, None);
    }
}
