//! CSV import and export of users from the console
//! (`/admin/users/import`, `/admin/users/export`).
//!
//! Owns: nothing. The upload is parsed by the strict multipart parser
//! (`web::multipart`) and the CSV by the CLI's own reader
//! (`directory::import::parse_csv`); the import runs as the CLI's
//! `DirectoryCommand::UserImport`: all rows or none, with every problem
//! reported by line.
//!
//! Invariants:
//! - The CSRF field of the multipart form is checked before the file is
//!   looked at; the body limit (`MAX_UPLOAD`) applies only to this path
//!   with a live admin session (`Console::body_limit`), before the body is read.
//! - The export holds no password or hash, starts with a UTF-8 byte-order
//!   mark (so spreadsheet programs read Korean names right; the import
//!   skips it) and is audited like every other action.
//!
//! Reads untrusted input: the uploaded file of a signed-in admin.

use super::directory_routes::Outcome;
use super::directory_views::{chrome, page, ImportPage};
use super::pages::{self, Problem};
use super::{Console, Ctx};
use crate::directory::commands::{execute, import as import_users, DirectoryCommand};
use crate::directory::import::{
    parse_csv, ImportProblems, ImportReport, ImportRequest, MAX_IMPORT_BYTES,
};
use crate::directory::DirectoryError;
use crate::web::csrf;
use crate::web::http::Reply;
use crate::web::multipart;
use crate::web::session::Session;

/// Largest import request: the CLI's file limit and room for the form.
pub const MAX_UPLOAD: usize = MAX_IMPORT_BYTES as usize + 64 * 1024;
/// Problem lines shown on the page (the rest are counted).
const SHOWN_PROBLEMS: usize = 200;

/// `GET /admin/users/import`.
pub fn show(_console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    render(ctx, session, None, Vec::new())
}

fn render(
    ctx: &Ctx<'_>,
    session: &Session,
    outcome: Option<Outcome>,
    report: Vec<String>,
) -> Reply {
    let t = ctx.lang.catalog();
    let status = outcome.as_ref().map_or(200, Outcome::status);
    let (message, error) = outcome.map_or((None, None), Outcome::texts);
    page(
        status,
        &ImportPage {
            t,
            chrome: chrome(ctx, "cdir.import_title", "/admin/users/import", session),
            csrf_token: session.csrf_token.clone(),
            message,
            error,
            report,
            limit_text: t.fill(
                "cdir.import_limit",
                &[("mb", &(MAX_IMPORT_BYTES / (1024 * 1024)).to_string())],
            ),
        },
    )
}

/// What an import did, in the page's language.
fn report_lines(report: &ImportReport, t: &crate::web::i18n::Catalog) -> Vec<String> {
    let n = |v: usize| v.to_string();
    let mut lines = vec![t.fill(
        "cdir.import_report",
        &[
            ("created", &n(report.created)),
            ("with", &n(report.with_password)),
            ("without", &n(report.created - report.with_password)),
        ],
    )];
    if report.created > report.with_password {
        lines.push(t.get("cdir.import_without_hint").to_string());
    }
    if report.skipped_existing > 0 {
        lines.push(t.fill(
            "cdir.import_skipped",
            &[("count", &n(report.skipped_existing))],
        ));
    }
    lines
}

/// The problem lines of a refused import, as shown.
fn problem_lines(problems: &ImportProblems, t: &crate::web::i18n::Catalog) -> Vec<String> {
    let mut lines: Vec<String> = problems
        .problems
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(|p| {
            let (key, values) = p.kind.catalog();
            let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let what = t.fill(key, &pairs);
            t.fill(
                "cdir.import_line",
                &[("line", &p.line.to_string()), ("what", &what)],
            )
        })
        .collect();
    if problems.problems.len() > SHOWN_PROBLEMS {
        let more = (problems.problems.len() - SHOWN_PROBLEMS).to_string();
        lines.push(t.fill("cdir.import_more", &[("count", &more)]));
    }
    lines
}

/// `POST /admin/users/import` (multipart: csrf_token, file, skip_existing).
pub fn import(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    if ctx.req.body_too_large {
        let failed = Outcome::Failed(
            413,
            t.fill(
                "cdir.import_too_large",
                &[("mb", &(MAX_IMPORT_BYTES / (1024 * 1024)).to_string())],
            ),
        );
        return render(ctx, session, Some(failed), Vec::new());
    }
    let content_type = ctx.req.content_type.as_deref().unwrap_or("");
    let form = match multipart::parse(content_type, &ctx.req.body) {
        Ok(form) => form,
        Err(err) => {
            tracing::debug!(%err, "console import: malformed upload");
            return pages::problem(ctx.lang, Problem::BadRequest, Some(session));
        }
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        tracing::warn!(ip = %ctx.ip(), "console import refused: CSRF token mismatch");
        return pages::problem(ctx.lang, Problem::FormExpired, Some(session));
    }
    let Some(file) = form
        .files
        .iter()
        .find(|f| f.field == "file" && !f.data.is_empty())
    else {
        let failed = Outcome::Failed(400, t.get("cdir.import_no_file").to_string());
        return render(ctx, session, Some(failed), Vec::new());
    };
    let target = if file.name.is_empty() {
        "upload.csv".to_string()
    } else {
        file.name.clone()
    };
    let Ok(text) = std::str::from_utf8(&file.data) else {
        console.audit(ctx, &session.user, "user_import", &target, "not_utf8");
        let failed = Outcome::Failed(400, t.get("cdir.import_not_utf8").to_string());
        return render(ctx, session, Some(failed), Vec::new());
    };
    let refused = |problems: &ImportProblems| {
        console.audit(ctx, &session.user, "user_import", &target, "refused");
        let lead = t.fill(
            "cdir.import_refused",
            &[("count", &problems.problems.len().to_string())],
        );
        render(
            ctx,
            session,
            Some(Outcome::Failed(400, lead)),
            problem_lines(problems, t),
        )
    };
    let rows = match parse_csv(text) {
        Ok(rows) => rows,
        Err(problems) => return refused(&problems),
    };
    let request = ImportRequest {
        rows,
        skip_existing: form.get("skip_existing") == Some("yes"),
    };
    match import_users(&console.directory, &request) {
        Ok(report) => {
            console.audit(ctx, &session.user, "user_import", &target, "ok");
            tracing::info!(admin = %session.user, file = %target, "console import");
            let done = Outcome::Done(t.get("cdir.import_done").to_string());
            render(ctx, session, Some(done), report_lines(&report, t))
        }
        Err(DirectoryError::ImportRefused(problems)) => refused(&problems),
        Err(err) => {
            let (status, code, text) = super::directory_routes::explain(ctx, &err, &target);
            console.audit(ctx, &session.user, "user_import", &target, code);
            render(
                ctx,
                session,
                Some(Outcome::Failed(status, text)),
                Vec::new(),
            )
        }
    }
}

/// `GET /admin/users/export`: every user as a CSV download.
pub fn export(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    match execute(&console.directory, &DirectoryCommand::UserExport) {
        Ok(csv) => {
            console.audit(ctx, &session.user, "user_export", "", "ok");
            let day = chrono::Utc::now().format("%Y-%m-%d");
            let mut body = "\u{feff}".to_string();
            body.push_str(&csv);
            Reply {
                status: 200,
                headers: vec![
                    ("Content-Type", "text/csv; charset=utf-8".into()),
                    (
                        "Content-Disposition",
                        format!("attachment; filename=\"users-{day}.csv\""),
                    ),
                    ("Cache-Control", "no-store".into()),
                ],
                body: body.into_bytes(),
            }
        }
        Err(err) => {
            tracing::error!(%err, "directory failed exporting users");
            console.audit(ctx, &session.user, "user_export", "", "directory_error");
            pages::problem(ctx.lang, Problem::Internal, Some(session))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::import::RowProblem;
    use crate::directory::import_problem::ProblemKind;
    use crate::web::i18n::Lang;

    /// Every reason a line can be refused reads in both languages, with
    /// every value filled in.
    #[test]
    fn every_import_problem_is_told_in_korean_and_english() {
        use ProblemKind::*;
        let s = || "x@y".to_string();
        let kinds = vec![
            TextAfterQuote,
            QuoteInField,
            UnclosedQuote,
            EmptyFile,
            UnknownColumn(s()),
            ColumnTwice(s()),
            NoAddressColumn,
            FieldCount {
                fields: 2,
                columns: 3,
            },
            TooManyRows,
            NoAddress,
            BadAddress(s()),
            UnknownDomain(s()),
            TwiceInFile {
                address: s(),
                first_line: 2,
            },
            IsAlias(s()),
            UserExists(s()),
            AddedMeanwhile(s()),
            BadClass(s()),
            ShortPassword,
            NameTooLong,
            NameHasControl,
            BadLeaveDate(s()),
            BadState(s()),
        ];
        let problems = ImportProblems {
            rows: kinds.len(),
            problems: kinds
                .into_iter()
                .enumerate()
                .map(|(line, kind)| RowProblem { line, kind })
                .collect(),
        };
        for lang in [Lang::Ko, Lang::En] {
            let t = lang.catalog();
            for line in problem_lines(&problems, t) {
                assert!(!line.contains('{') && !line.contains("cdir."), "{line}");
            }
        }
        assert!(problem_lines(&problems, Lang::Ko.catalog())[12].contains("2번째 줄"));
    }
}
