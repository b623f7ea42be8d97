//! `GET /mail/search`: the search page (the quick box of every list page
//! and the advanced form) and its results, paged like the list.
//!
//! Owns: the search URL's spelling (`q`, `from`, `to`, `subject`, `body`,
//! `since`, `until` as YYYY-MM-DD in KST, `folder`: empty for every folder,
//! `page`) and the messages for an empty query, no results, too many
//! results and bad dates.
//!
//! Invariants:
//! - The store is asked with the session's user only (`Store::search`
//!   returns only that user's messages, verified against their rows).
//! - A malformed value gets the form back with a message saying what to
//!   fix (status 400), never a guess.
//!
//! Reads untrusted input: every query value; text only reaches the store's
//! normalization and the page (askama-escaped).

use askama::Template;
use chrono::{FixedOffset, NaiveDate, TimeZone};

use super::folder_nav::display_name;
use super::mailbox::{page_count, page_number, user_bar};
use super::pages::{self, message_href, Chrome, Problem};
use super::{Ctx, Webmail};
use crate::store::folders::DRAFTS;
use crate::store::search::MAX_QUERY_CHARS;
use crate::store::{SearchQuery, UserFolder};
use crate::web::form::encode;
use crate::web::format;
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;

pub const PATH: &str = "/mail/search";

/// The text fields of the form, in URL order.
const TEXT_FIELDS: [&str; 5] = ["q", "from", "to", "subject", "body"];

/// What the form asked for, as typed (for refilling the form and links).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchForm {
    pub q: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub since: String,
    pub until: String,
    /// Empty: every folder.
    pub folder: String,
    pub page: usize,
}

/// What is wrong with a search form, each with its catalog message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormProblem {
    TooLong,
    BadDate,
    DatesReversed,
    BadPage,
}

impl FormProblem {
    fn key(self) -> &'static str {
        match self {
            FormProblem::TooLong => "search.err_too_long",
            FormProblem::BadDate => "search.err_date",
            FormProblem::DatesReversed => "search.err_dates_reversed",
            FormProblem::BadPage => "search.err_page",
        }
    }
}

/// Midnight KST of a `YYYY-MM-DD` date, as unix seconds.
fn kst_midnight(date: NaiveDate) -> Option<i64> {
    let kst = FixedOffset::east_opt(9 * 3600)?;
    let midnight = date.and_hms_opt(0, 0, 0)?;
    kst.from_local_datetime(&midnight)
        .single()
        .map(|d| d.timestamp())
}

/// A strict `YYYY-MM-DD` (what `<input type=date>` sends).
fn parse_date(text: &str) -> Result<Option<NaiveDate>, FormProblem> {
    if text.is_empty() {
        return Ok(None);
    }
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(FormProblem::BadDate);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| FormProblem::BadDate)
}

impl SearchForm {
    /// From the query's fields; the problem found first, if any.
    pub fn from_fields<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> (SearchForm, Option<FormProblem>) {
        let text = |k: &str| get(k).unwrap_or("").trim().to_string();
        let page = page_number(get("page").filter(|p| !p.is_empty()));
        let form = SearchForm {
            q: text("q"),
            from: text("from"),
            to: text("to"),
            subject: text("subject"),
            body: text("body"),
            since: text("since"),
            until: text("until"),
            folder: text("folder"),
            page: page.unwrap_or(1),
        };
        let too_long = form
            .texts()
            .iter()
            .any(|(_, v)| v.chars().count() > MAX_QUERY_CHARS)
            || form.folder.len() > 100;
        let problem = if too_long {
            Some(FormProblem::TooLong)
        } else if page.is_none() {
            Some(FormProblem::BadPage)
        } else {
            match (parse_date(&form.since), parse_date(&form.until)) {
                (Err(p), _) | (_, Err(p)) => Some(p),
                (Ok(Some(a)), Ok(Some(b))) if a > b => Some(FormProblem::DatesReversed),
                _ => None,
            }
        };
        (form, problem)
    }

    fn texts(&self) -> [(&'static str, &String); 5] {
        [
            (TEXT_FIELDS[0], &self.q),
            (TEXT_FIELDS[1], &self.from),
            (TEXT_FIELDS[2], &self.to),
            (TEXT_FIELDS[3], &self.subject),
            (TEXT_FIELDS[4], &self.body),
        ]
    }

    /// Nothing asked for at all: the bare page with the empty form.
    pub fn is_blank(&self) -> bool {
        self.texts().iter().all(|(_, v)| v.is_empty())
            && self.since.is_empty()
            && self.until.is_empty()
    }

    /// The store's query (call only on a form without problems).
    pub fn query(&self) -> SearchQuery {
        let day = |t: &str| parse_date(t).ok().flatten();
        SearchQuery {
            anywhere: self.q.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            folder: (!self.folder.is_empty()).then(|| self.folder.clone()),
            since: day(&self.since).and_then(kst_midnight),
            // The "to" day is included: before the next midnight.
            until: day(&self.until)
                .and_then(|d| d.succ_opt())
                .and_then(kst_midnight),
        }
    }

    /// This search's URL at `page`; empty values left out.
    pub fn href(&self, page: usize) -> String {
        let mut parts: Vec<String> = self
            .texts()
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        for (k, v) in [
            ("since", &self.since),
            ("until", &self.until),
            ("folder", &self.folder),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() {
            PATH.to_string()
        } else {
            format!("{PATH}?{}", parts.join("&"))
        }
    }
}

/// One result line.
pub struct SearchRow {
    pub href: String,
    pub from: String,
    pub subject: String,
    pub folder: String,
    pub date: String,
    pub iso_date: String,
    pub seen: bool,
}

/// The search page (kept here rather than in `pages.rs`: only this module
/// fills it). Every value is escaped by askama.
#[derive(Template)]
#[template(path = "webmail/search.html")]
pub struct SearchPage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    /// What was asked, to refill the form.
    pub form: SearchForm,
    /// (value, name, selected) of the folder choice.
    pub folders: Vec<(String, String, bool)>,
    /// What to fix in the form.
    pub error: Option<String>,
    /// No results, or too many.
    pub notice: Option<String>,
    pub rows: Vec<SearchRow>,
    pub total_text: String,
    pub pages: usize,
    pub page_of_text: String,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

/// The folder choices of the form: every folder, then each folder.
fn folder_options(
    t: &Catalog,
    folders: &[UserFolder],
    chosen: &str,
) -> Vec<(String, String, bool)> {
    let mut out = vec![(
        String::new(),
        t.get("search.all_folders").to_string(),
        chosen.is_empty(),
    )];
    for target in super::mailbox::move_targets(t, folders) {
        let selected = target.id == chosen;
        out.push((target.id, target.name, selected));
    }
    out
}

/// `GET /mail/search?...`
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let (form, problem) = SearchForm::from_fields(|k| ctx.query.get(k));
    let folders = match webmail.store.user_folders(&session.user) {
        Ok(f) => f,
        Err(err) => {
            tracing::error!(%err, "listing folders failed");
            return pages::problem(ctx.lang, Problem::Internal, None);
        }
    };
    let folder_known = form.folder.is_empty() || display_name(t, &folders, &form.folder).is_some();
    let mut view = SearchPage {
        t,
        chrome: Chrome::new(
            t,
            "search.title",
            PATH,
            Some(user_bar(webmail, t, session, &folders, None)),
        ),
        form: form.clone(),
        folders: folder_options(t, &folders, &form.folder),
        error: None,
        notice: None,
        rows: Vec::new(),
        total_text: String::new(),
        pages: 1,
        page_of_text: String::new(),
        prev_href: None,
        next_href: None,
    };
    if let Some(problem) = problem {
        view.error = Some(t.get(problem.key()).to_string());
        return pages::render(400, &view);
    }
    if !folder_known {
        view.error = Some(t.get("search.err_folder").to_string());
        return pages::render(400, &view);
    }
    if form.is_blank() {
        if ctx.query.get("q").is_some() {
            view.error = Some(t.get("search.err_empty").to_string());
        }
        return pages::render(200, &view);
    }
    let query = form.query();
    if query.is_empty() {
        view.error = Some(t.get("search.err_empty").to_string());
        return pages::render(200, &view);
    }
    let size = webmail.config.mailbox.page_size.max(1);
    let run = |page: usize| {
        webmail
            .store
            .search(&session.user, &query, (page - 1) * size, size)
    };
    let mut page = form.page;
    let mut results = match run(page) {
        Ok(r) => r,
        Err(err) => {
            tracing::error!(%err, "search failed");
            return pages::problem(ctx.lang, Problem::Internal, None);
        }
    };
    let pages = page_count(results.total, size);
    if page > pages {
        page = pages;
        results = match run(page) {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(%err, "search failed");
                return pages::problem(ctx.lang, Problem::Internal, None);
            }
        };
    }
    view.rows = results
        .messages
        .iter()
        .map(|m| SearchRow {
            href: if m.folder == DRAFTS {
                format!("{}?draft={}", super::compose::PATH, m.id)
            } else {
                message_href(&m.id.to_string())
            },
            from: non_empty(&m.from, t.get("inbox.no_sender")),
            subject: non_empty(&m.subject, t.get("inbox.no_subject")),
            folder: display_name(t, &folders, &m.folder).unwrap_or_default(),
            date: format::list_date(m.date, ctx.now),
            iso_date: format::iso(m.date),
            seen: m.seen,
        })
        .collect();
    view.notice = if results.total == 0 {
        Some(t.get("search.none").to_string())
    } else if results.capped {
        Some(t.fill(
            "search.capped",
            &[("max", &crate::store::search::MAX_MATCHES.to_string())],
        ))
    } else {
        None
    };
    view.total_text = t.fill("search.total", &[("total", &results.total.to_string())]);
    view.pages = pages;
    view.page_of_text = t.fill(
        "inbox.page_of",
        &[("page", &page.to_string()), ("pages", &pages.to_string())],
    );
    view.prev_href = (page > 1).then(|| form.href(page - 1));
    view.next_href = (page < pages).then(|| form.href(page + 1));
    pages::render(200, &view)
}

fn non_empty(text: &str, fallback: &str) -> String {
    if text.trim().is_empty() {
        fallback.to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> (SearchForm, Option<FormProblem>) {
        let form = crate::web::form::Form::parse(q.as_bytes(), 4096).unwrap_or_default();
        SearchForm::from_fields(|k| form.get(k))
    }

    #[test]
    fn forms_round_trip_through_their_links() {
        let (form, problem) = parse(
            "q=%ED%95%99%EA%B8%B0&from=kim&since=2025-03-01&until=2025-03-31&folder=INBOX&page=2",
        );
        assert_eq!(problem, None);
        assert_eq!(form.q, "학기");
        let href = form.href(2);
        let (again, _) = parse(&href[PATH.len() + 1..]);
        assert_eq!(again, form);
        let q = form.query();
        assert_eq!(q.folder.as_deref(), Some("INBOX"));
        // 2025-03-01 00:00 KST and 2025-04-01 00:00 KST.
        assert_eq!(q.since, Some(1_740_754_800));
        assert_eq!(q.until, Some(1_743_433_200));
        assert_eq!(parse("").0.href(1), PATH);
    }

    #[test]
    fn bad_values_are_named() {
        for (q, expected) in [
            ("since=2025-3-1", FormProblem::BadDate),
            ("until=2025-02-30", FormProblem::BadDate),
            ("since=yesterday", FormProblem::BadDate),
            (
                "since=2025-03-02&until=2025-03-01",
                FormProblem::DatesReversed,
            ),
            ("page=0", FormProblem::BadPage),
        ] {
            assert_eq!(parse(q).1, Some(expected), "{q}");
        }
        let long = format!("q={}", "가".repeat(MAX_QUERY_CHARS + 1));
        assert_eq!(parse(&long).1, Some(FormProblem::TooLong));
        assert!(parse("q=").0.is_blank());
        assert!(!parse("since=2025-03-01").0.is_blank());
    }

    #[test]
    fn the_page_escapes_what_was_typed_and_found() {
        use crate::web::i18n::Lang;
        for lang in [Lang::Ko, Lang::En] {
            let t = lang.catalog();
            let (form, _) = parse("q=%22%3E%3Cscript%3Ex%3C%2Fscript%3E");
            let page = SearchPage {
                t,
                chrome: Chrome::new(t, "search.title", PATH, None),
                form,
                folders: vec![("<f>".into(), "<b>folder</b>".into(), true)],
                error: Some(t.get("search.err_date").into()),
                notice: None,
                rows: vec![SearchRow {
                    href: message_href("node-a.1"),
                    from: "<img src=x onerror=alert(1)>".into(),
                    subject: "<script>alert(2)</script>".into(),
                    folder: "<i>INBOX</i>".into(),
                    date: String::new(),
                    iso_date: String::new(),
                    seen: false,
                }],
                total_text: String::new(),
                pages: 1,
                page_of_text: String::new(),
                prev_href: None,
                next_href: None,
            };
            let html = page.render().unwrap_or_default();
            assert!(html.contains(t.get("search.err_date")));
            assert!(
                !html.contains("<script>") && !html.contains("<img src=x"),
                "{html}"
            );
            assert!(!html.contains("<b>folder") && !html.contains("<i>INBOX"));
            assert!(!html.contains("\"><script"));
        }
    }
}
