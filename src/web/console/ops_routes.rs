//! The routes of the console's operations pages (the dashboard is
//! `Route::Dashboard`): queues (`queues.rs`) and logs (`logs.rs`). They
//! are reached from `Console::dispatch` only after the admin session gate.
//!
//! Invariants: exact path matches only (no trailing slash, no decoding);
//! a method a page does not take gets the console's 405 page.
//!
//! Reads untrusted input: the path (only compared).

use super::pages::{problem, Problem};
use super::{logs, queues, Console, Ctx};
use crate::web::http::{Method, Reply};
use crate::web::session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsPage {
    Queues,
    QueueAct,
    QueueDelete,
    MailLog,
    AuditCsv,
}

impl OpsPage {
    pub fn parse(path: &str) -> Option<OpsPage> {
        Some(match path {
            "/admin/queues" => OpsPage::Queues,
            "/admin/queues/act" => OpsPage::QueueAct,
            "/admin/queues/delete" => OpsPage::QueueDelete,
            "/admin/maillog" => OpsPage::MailLog,
            "/admin/audit.csv" => OpsPage::AuditCsv,
            _ => return None,
        })
    }
}

/// Answers `page` for a signed-in admin (`method` has HEAD as GET).
pub fn handle(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    method: Method,
    page: OpsPage,
) -> Reply {
    match (method, page) {
        (Method::Get, OpsPage::Queues) => queues::list(console, ctx, session),
        (Method::Post, OpsPage::QueueAct) => queues::act(console, ctx, session),
        (Method::Get, OpsPage::QueueDelete) => queues::confirm(console, ctx, session),
        (Method::Post, OpsPage::QueueDelete) => queues::delete(console, ctx, session),
        (Method::Get, OpsPage::MailLog) => logs::mail_log(console, ctx, session),
        (Method::Get, OpsPage::AuditCsv) => logs::audit_csv(console, ctx, session),
        _ => problem(ctx.lang, Problem::Method, Some(session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_exact() {
        assert_eq!(OpsPage::parse("/admin/queues"), Some(OpsPage::Queues));
        assert_eq!(OpsPage::parse("/admin/queues/act"), Some(OpsPage::QueueAct));
        assert_eq!(
            OpsPage::parse("/admin/queues/delete"),
            Some(OpsPage::QueueDelete)
        );
        assert_eq!(OpsPage::parse("/admin/maillog"), Some(OpsPage::MailLog));
        assert_eq!(OpsPage::parse("/admin/audit.csv"), Some(OpsPage::AuditCsv));
        for path in [
            "/admin/queues/",
            "/admin//queues",
            "/admin/%71ueues",
            "/admin/queues/act/x",
            "/ADMIN/queues",
        ] {
            assert_eq!(OpsPage::parse(path), None, "{path}");
        }
    }
}
