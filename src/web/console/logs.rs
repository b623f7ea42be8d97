//! The console's log pages (O3): the mail log (`GET /admin/maillog?q=&day=`,
//! written by the engine, see `ops::mail_log`) and the audit log's CSV
//! export (`GET /admin/audit.csv?q=`).
//!
//! Invariants:
//! - Both only read the daily files; nothing here writes a log except the
//!   audit line of the export itself (`audit_export`).
//! - CSV cells are quoted (RFC 4180 §2) and a cell that a spreadsheet
//!   would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR)
//!   gets a leading `'`, so an address typed by someone cannot become a
//!   formula on the admin's desktop.
//!
//! Reads untrusted input: the search text and day (the day must be
//! `YYYY-MM-DD` and is compared with file names, never joined as given),
//! and the log lines (escaped by askama or by the CSV writer).

use askama::Template;

use super::audit::{AuditEntry, EXPORT_LIMIT};
use super::pages::{problem, ConsoleChrome, Problem};
use super::{Console, Ctx};
use crate::ops::mail_log::{MailLog, MailLogEntry, SEARCH_LIMIT};
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;
use crate::web::webmail::pages::render;

pub struct LogRow {
    pub entry: MailLogEntry,
    pub status_text: String,
}

#[derive(Template)]
#[template(path = "console/maillog.html")]
struct MailLogPage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    query: String,
    day: String,
    hint: String,
    rows: Vec<LogRow>,
    more_text: Option<String>,
    error: Option<String>,
}

/// `GET /admin/maillog?q=&day=`.
pub fn mail_log(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let query: String = ctx.query.get("q").unwrap_or("").chars().take(256).collect();
    let day = ctx.query.get("day").unwrap_or("").trim().to_string();
    let config = console.monitor.config();
    let hint = t.fill(
        "ops.maillog_hint",
        &[("days", &config.logs.keep_days.to_string())],
    );
    let valid_day = day.is_empty()
        || (day.len() == 10 && chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").is_ok());
    let (status, rows, more, error) = if !valid_day {
        (
            400,
            Vec::new(),
            false,
            Some(t.get("ops.maillog_bad_day").to_string()),
        )
    } else {
        let log = MailLog::in_data_dir(&config.node.data_dir);
        match log.search(&query, (!day.is_empty()).then_some(day.as_str())) {
            Ok(found) => (200, found.entries, found.more, None),
            Err(err) => {
                tracing::error!(%err, "reading the mail log failed");
                return problem(ctx.lang, Problem::Internal, Some(session));
            }
        }
    };
    let rows = rows
        .into_iter()
        .map(|entry| LogRow {
            status_text: match entry.status.as_str() {
                "delivered" => t.get("ops.log_delivered").to_string(),
                "deferred" => t.get("ops.log_deferred").to_string(),
                "bounced" => t.get("ops.log_bounced").to_string(),
                other => other.to_string(),
            },
            entry,
        })
        .collect();
    let page = MailLogPage {
        t,
        chrome: ConsoleChrome::new(t, "ops.maillog_title", "/admin/maillog", Some(session)),
        query,
        day: day.chars().take(32).collect(),
        hint,
        rows,
        more_text: more
            .then(|| t.fill("ops.maillog_more", &[("limit", &SEARCH_LIMIT.to_string())])),
        error,
    };
    render(status, &page)
}

/// `GET /admin/audit.csv?q=`: the matching audit entries, newest first.
pub fn audit_csv(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let query: String = ctx.query.get("q").unwrap_or("").chars().take(256).collect();
    let found = match console.audit.search_up_to(&query, EXPORT_LIMIT) {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(%err, "reading the audit log failed");
            return problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    console.audit(ctx, &session.user, "audit_export", &query, "ok");
    let day = chrono::DateTime::from_timestamp(ctx.now, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    Reply {
        status: 200,
        headers: vec![
            ("Content-Type", "text/csv; charset=utf-8".into()),
            (
                "Content-Disposition",
                format!("attachment; filename=\"audit-{day}.csv\""),
            ),
        ],
        body: audit_to_csv(&found.entries).into_bytes(),
    }
}

/// The entries as CSV with a header line, CRLF line ends (RFC 4180 §2), and
/// a byte-order mark so spreadsheet programs read the Korean as UTF-8.
pub fn audit_to_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::from("\u{feff}time,admin,ip,action,target,outcome\r\n");
    for e in entries {
        let cells = [&e.time, &e.admin, &e.ip, &e.action, &e.target, &e.outcome];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let ip = std::net::IpAddr::from([192, 0, 2, 1]);
        let entries = [
            AuditEntry::new(0, "admin", ip, "user_create", "=HYPERLINK(\"x\")", "ok"),
            AuditEntry::new(0, "admin", ip, "login", "a,b\nc", "wrong_password"),
        ];
        let csv = audit_to_csv(&entries);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], "\u{feff}time,admin,ip,action,target,outcome");
        assert_eq!(
            lines[1],
            "\"1970-01-01T00:00:00Z\",\"admin\",\"192.0.2.1\",\"user_create\",\"'=HYPERLINK(\"\"x\"\")\",\"ok\""
        );
        assert!(lines[2].contains("\"a,b\nc\""));
    }
}
