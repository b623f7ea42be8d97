//! `/mail?view=conversations`: a folder's list grouped by conversation,
//! one row per conversation ordered by its newest message in the folder
//! (`Store::list_conversations`), with the conversation's size, the
//! newest message's sender, subject and date, and unread while any of its
//! messages in the folder is. A row opens the newest message, whose page
//! lists the whole conversation. Each row has a checkbox naming the
//! conversation by its newest message's id, and the page has the flat
//! list's action bar: `actions::submit` applies a button to every
//! message of the ticked conversations in this folder.
//!
//! Owns: the grouped view's URL (`view=conversations`, with `folder`,
//! `order` and `page` as the list spells them; the list's other sort
//! orders do not apply: rows are ordered by date).
//!
//! Invariants: the page itself changes nothing; the session gate of
//! `/mail` applies (`mailbox::inbox` hands the request here); the action
//! form carries the session's CSRF token.
//!
//! Reads untrusted input: the query (through `ListQuery::from_fields`).

use askama::Template;

use super::list_query::{ListQuery, ListView};
use super::mailbox::{done_notice, move_targets, page_count, user_bar};
use super::pages::{self, message_href, Chrome, MoveTarget, Problem};
use super::{Ctx, Webmail};
use crate::store::folders::{DRAFTS, INBOX, TRASH};
use crate::store::SortKey;
use crate::web::form::encode;
use crate::web::format;
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;

/// The query value that asks for this view.
pub const VIEW: &str = "conversations";

/// One conversation on the page.
pub struct GroupedRow {
    /// The checkbox value: the newest message's id, which names the
    /// conversation (`Store::conversation_members`).
    pub key: String,
    pub href: String,
    pub from: String,
    pub subject: String,
    pub date: String,
    pub iso_date: String,
    pub unread: bool,
    pub flagged: bool,
    /// Messages in the conversation (all folders), and that in words.
    pub count: usize,
    pub count_text: String,
}

#[derive(Template)]
#[template(path = "webmail/conversations.html")]
pub struct GroupedPage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    pub heading: String,
    /// The folder shown (the search box's "this folder", and the folder
    /// the actions apply in).
    pub folder: String,
    pub total_text: String,
    pub notice: Option<String>,
    pub csrf_token: String,
    /// "desc" or "asc", and the page: where an action comes back to.
    pub order: &'static str,
    pub page: usize,
    pub targets: Vec<MoveTarget>,
    pub in_trash: bool,
    pub rows: Vec<GroupedRow>,
    pub ungrouped_href: String,
    pub order_href: String,
    pub order_text: String,
    pub pages: usize,
    pub page_of_text: String,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

/// The grouped view's URL for `folder`, page `page`.
pub fn href(folder: &str, descending: bool, page: usize) -> String {
    let mut url = format!("/mail?view={VIEW}");
    if folder != INBOX {
        url.push_str(&format!("&folder={}", encode(folder)));
    }
    if !descending {
        url.push_str("&order=asc");
    }
    if page > 1 {
        url.push_str(&format!("&page={page}"));
    }
    url
}

/// `GET /mail?view=conversations[&folder=F][&order=asc|desc][&page=N]`
/// (or `/mail` for a user who saved this view); `query` is the request's.
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session, query: ListQuery) -> Reply {
    let t = ctx.lang.catalog();
    let descending = query.key != SortKey::Date || query.descending;
    let folders = match webmail.store.user_folders(&session.user) {
        Ok(f) => f,
        Err(err) => return internal(ctx, &err),
    };
    let folder = query.folder.clone();
    let Some(heading) = super::folder_nav::display_name(t, &folders, &folder) else {
        return pages::problem(ctx.lang, Problem::NotFound, None);
    };
    let size = webmail.config.mailbox.page_size.max(1);
    let list = |page: usize| {
        webmail.store.list_conversations(
            &session.user,
            &folder,
            descending,
            (page - 1) * size,
            size,
        )
    };
    let mut page = query.page;
    let mut listing = match list(page) {
        Ok(l) => l,
        Err(err) => return internal(ctx, &err),
    };
    let pages = page_count(listing.total, size);
    if page > pages {
        page = pages;
        listing = match list(page) {
            Ok(l) => l,
            Err(err) => return internal(ctx, &err),
        };
    }
    let newest: Vec<_> = listing.rows.iter().map(|r| r.newest.clone()).collect();
    let sizes = webmail.store.conversation_sizes(&session.user, &newest);
    let rows = listing
        .rows
        .iter()
        .zip(sizes)
        .map(|(row, count)| {
            let m = &row.newest;
            let count = count.max(row.in_folder);
            GroupedRow {
                key: m.id.to_string(),
                href: if folder == DRAFTS {
                    format!("{}?draft={}", super::compose::PATH, m.id)
                } else {
                    message_href(&m.id.to_string())
                },
                from: fallback(&m.from, t.get("inbox.no_sender")),
                subject: fallback(&m.subject, t.get("inbox.no_subject")),
                date: format::list_date(m.date, ctx.now),
                iso_date: format::iso(m.date),
                unread: row.unread,
                flagged: m.flagged,
                count,
                count_text: t.fill("contacts.messages_in", &[("count", &count.to_string())]),
            }
        })
        .collect();
    let here = href(&folder, descending, page);
    let bar = user_bar(webmail, t, session, &folders, Some(&folder));
    let view = GroupedPage {
        t,
        chrome: Chrome::new(t, "inbox.title", &here, Some(bar)).titled(&heading),
        heading,
        folder: folder.clone(),
        total_text: t.fill(
            "contacts.conversations_total",
            &[("total", &listing.total.to_string())],
        ),
        notice: match ctx.query.get("done") {
            Some("none") => Some(t.get("actions.no_conversation_selected").to_string()),
            _ => done_notice(ctx),
        },
        csrf_token: session.csrf_token.clone(),
        order: if descending { "desc" } else { "asc" },
        page,
        targets: move_targets(t, &folders),
        in_trash: folder == TRASH,
        rows,
        // Named, so it opens the flat list even when this view is saved.
        ungrouped_href: ListQuery {
            page: 1,
            key: SortKey::Date,
            descending,
            view: Some(ListView::Messages),
            ..query
        }
        .href(1),
        order_href: href(&folder, !descending, 1),
        order_text: t
            .get(if descending {
                "contacts.oldest_first"
            } else {
                "contacts.newest_first"
            })
            .to_string(),
        pages,
        page_of_text: t.fill(
            "inbox.page_of",
            &[("page", &page.to_string()), ("pages", &pages.to_string())],
        ),
        prev_href: (page > 1).then(|| href(&folder, descending, page - 1)),
        next_href: (page < pages).then(|| href(&folder, descending, page + 1)),
    };
    pages::render(200, &view)
}

fn fallback(text: &str, instead: &str) -> String {
    if text.trim().is_empty() {
        instead.to_string()
    } else {
        text.to_string()
    }
}

fn internal(ctx: &Ctx<'_>, err: &crate::store::StoreError) -> Reply {
    tracing::error!(%err, path = %ctx.req.path, "store failed");
    pages::problem(ctx.lang, Problem::Internal, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Lang;

    #[test]
    fn urls_keep_folder_order_and_page() {
        assert_eq!(href(INBOX, true, 1), "/mail?view=conversations");
        let t = Lang::Ko.catalog();
        let chrome = Chrome::new(t, "inbox.title", &href(INBOX, false, 1), None);
        assert_eq!(
            chrome.switch_lang_href,
            "/mail?view=conversations&order=asc&lang=en"
        );
        assert_eq!(
            href("수업", false, 3),
            "/mail?view=conversations&folder=%EC%88%98%EC%97%85&order=asc&page=3"
        );
    }

    #[test]
    fn rows_are_escaped() {
        let t = Lang::En.catalog();
        let page = GroupedPage {
            t,
            chrome: Chrome::new(t, "inbox.title", "/mail", None),
            heading: "<h>".into(),
            folder: "<f>".into(),
            total_text: "<t>".into(),
            notice: Some("<n>".into()),
            csrf_token: "tok".into(),
            order: "desc",
            page: 2,
            targets: vec![MoveTarget {
                id: "node-a.2".into(),
                name: "<script>f</script>".into(),
            }],
            in_trash: false,
            rows: vec![GroupedRow {
                key: "node-a.7".into(),
                href: "/mail/message/x".into(),
                from: "<img src=x onerror=alert(1)>".into(),
                subject: "<script>alert(2)</script>".into(),
                date: String::new(),
                iso_date: String::new(),
                unread: true,
                flagged: false,
                count: 3,
                count_text: "3 messages".into(),
            }],
            ungrouped_href: "/mail".into(),
            order_href: "/mail?view=conversations&order=asc".into(),
            order_text: "Oldest first".into(),
            pages: 1,
            page_of_text: String::new(),
            prev_href: None,
            next_href: None,
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"));
        assert!(!html.contains("<h>") && !html.contains("<t>") && !html.contains("<n>"));
        assert!(!html.contains("<script>f"));
        assert!(html.contains("class=\"unread\""));
        // The action form: CSRF token, the way back, a labelled checkbox.
        assert!(html.contains(r#"name="csrf_token" value="tok""#));
        assert!(html.contains(r#"name="list_view" value="conversations""#));
        assert!(html.contains(r#"name="page" value="2""#));
        assert!(html.contains(r#"name="c" value="node-a.7" id="pick-1""#));
        assert!(html.contains(r#"<label for="pick-1""#));
    }
}
