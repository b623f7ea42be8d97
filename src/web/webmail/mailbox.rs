//! The mail pages: the inbox list, one message, and its HTML body document.
//!
//! Owns: paging arithmetic and how a message is put on screen.
//!
//! Invariants:
//! - Every store call passes the session's user, so a user only ever reaches
//!   their own messages; another user's id is "not found", like a bad one.
//! - Message HTML reaches the browser only as `/body`, its own document under
//!   a CSP without scripts, loaded in a sandboxed frame.
//! - Remote images load only when the user asked (`?images=1`), and then
//!   only in that frame.
//!
//! Reads untrusted input: the page number, the `images` and `sent` flags,
//! and message data from the store (displayed escaped).

use super::folder_nav::{self, display_name, list_href};
use super::list_query::{key_name, ListQuery, ListView};
use super::pages::{
    self, message_href, AttachmentRow, BodyDocument, Chrome, ConversationRow, InboxPage,
    ListFields, MessagePage, MessageRow, MoveTarget, Problem, QuotaBar, SortColumn, UserBar,
};
use super::{Ctx, Webmail};
use crate::store::folders::{DRAFTS, INBOX, SENT, TRASH};
use crate::store::{MessageId, SortKey, StoreError, UserFolder};
use crate::web::format;
use crate::web::http::Reply;
use crate::web::session::Session;

use crate::mailbox::local_delivery::{DefaultQuota, Quota};
use crate::web::i18n::Catalog;

/// CSP of the message body document; remote images only when allowed.
fn body_csp(images: bool) -> String {
    let img = if images {
        "data: cid: https: http:"
    } else {
        "data: cid:"
    };
    format!("default-src 'none'; style-src 'unsafe-inline'; img-src {img}; frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
}

/// Which page of how many, from `?page=N` (1-based). `None` when malformed.
pub fn page_number(raw: Option<&str>) -> Option<usize> {
    match raw {
        None => Some(1),
        Some(text) => {
            if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse::<usize>().ok().filter(|n| *n >= 1)
        }
    }
}

/// Number of pages for `total` messages (at least one, even when empty).
pub fn page_count(total: usize, page_size: usize) -> usize {
    total.div_ceil(page_size.max(1)).max(1)
}

fn internal(ctx: &Ctx<'_>, err: &StoreError) -> Reply {
    tracing::error!(%err, path = %ctx.req.path, "store failed");
    pages::problem(ctx.lang, Problem::Internal, None)
}

/// The header bar of a logged-in page: the inbox's unread count and the
/// folder list (`current` marked). A store failure leaves the list out
/// (logged) rather than the page.
pub(super) fn user_bar(
    webmail: &Webmail,
    t: &Catalog,
    session: &Session,
    folders: &[UserFolder],
    current: Option<&str>,
) -> UserBar {
    let unread = webmail
        .store
        .unseen_count(&session.user, INBOX)
        .unwrap_or_else(|err| {
            tracing::error!(%err, "unread count failed");
            0
        });
    let mut bar = UserBar::new(t, &session.user, unread, &session.csrf_token);
    bar.language_saved = webmail.saved_language(&session.user).is_some();
    match folder_nav::links(&webmail.store, t, &session.user, folders, current) {
        Ok(links) => bar.with_folders(links),
        Err(err) => {
            tracing::error!(%err, "folder list failed");
            bar
        }
    }
}

/// The user's folders; an empty list (logged) when the store fails.
pub(super) fn user_folders(webmail: &Webmail, user: &str) -> Vec<UserFolder> {
    webmail.store.user_folders(user).unwrap_or_else(|err| {
        tracing::error!(%err, "listing folders failed");
        Vec::new()
    })
}

/// The folders a message can be moved to: the system ones, then the
/// user's, indented by depth.
pub(super) fn move_targets(t: &Catalog, folders: &[UserFolder]) -> Vec<MoveTarget> {
    let mut out: Vec<MoveTarget> = crate::store::folders::SYSTEM_FOLDERS
        .iter()
        .map(|id| MoveTarget {
            id: id.to_string(),
            name: display_name(t, &[], id).unwrap_or_default(),
        })
        .collect();
    for (f, depth) in folder_nav::tree(folders) {
        out.push(MoveTarget {
            id: f.id.clone(),
            name: format!("{}{}", "— ".repeat(depth), f.name),
        });
    }
    out
}

/// The confirmation after an action (`?done=move&n=3`), if any.
pub(super) fn done_notice(ctx: &Ctx<'_>) -> Option<String> {
    let t = ctx.lang.catalog();
    let key = match ctx.query.get("done")? {
        "move" => "actions.done_move",
        "trash" => "actions.done_trash",
        "delete" => "actions.done_delete",
        "read" => "actions.done_read",
        "unread" => "actions.done_unread",
        "flag" => "actions.done_flag",
        "unflag" => "actions.done_unflag",
        "none" => "actions.none_selected",
        _ => return None,
    };
    let n = ctx
        .query
        .get("n")
        .filter(|n| n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("0");
    Some(t.fill(key, &[("count", n)]))
}

/// `GET /mail[?folder=F][&sort=from|subject|size|date][&order=asc|desc][&page=N]`;
/// with `view=conversations`, the list grouped by conversation; without
/// `view=` (`messages` or `conversations`), the view the user saved.
pub fn inbox(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let Some(mut query) = ListQuery::from_fields(|k| ctx.query.get(k)) else {
        return pages::problem(ctx.lang, Problem::BadPage, None);
    };
    // Without `view=`, the view saved in the user's settings.
    let saved = super::settings::saved_list_view(webmail, &session.user);
    if query.view.unwrap_or(saved) == ListView::Conversations {
        return super::conversation_list::show(webmail, ctx, session, query);
    }
    let folders = match webmail.store.user_folders(&session.user) {
        Ok(f) => f,
        Err(err) => return internal(ctx, &err),
    };
    let Some(heading) = display_name(t, &folders, &query.folder) else {
        return pages::problem(ctx.lang, Problem::NotFound, None);
    };
    let folder = query.folder.clone();
    let size = webmail.config.mailbox.page_size.max(1);
    let list = |page: usize| {
        webmail.store.list_sorted(
            &session.user,
            &folder,
            query.order(),
            (page - 1) * size,
            size,
        )
    };
    let mut listing = match list(query.page) {
        Ok(listing) => listing,
        Err(err) => return internal(ctx, &err),
    };
    let pages = page_count(listing.total, size);
    if query.page > pages {
        // Past the end (mail was deleted meanwhile): show the last page.
        listing = match list(pages) {
            Ok(listing) => listing,
            Err(err) => return internal(ctx, &err),
        };
        query.page = pages;
    }
    let page = query.page;
    let bar = user_bar(webmail, t, session, &folders, Some(&folder));
    let sizes = webmail
        .store
        .conversation_sizes(&session.user, &listing.messages);
    let rows = listing
        .messages
        .iter()
        .zip(sizes)
        .map(|(m, conversation)| {
            let subject = non_empty(&m.subject, t.get("inbox.no_subject"));
            MessageRow {
                id: m.id.to_string(),
                flagged: m.flagged,
                answered: m.answered,
                // A draft opens in the compose form, to be finished.
                href: if folder == DRAFTS {
                    format!("{}?draft={}", super::compose::PATH, m.id)
                } else {
                    message_href(&m.id.to_string())
                },
                from: non_empty(&m.from, t.get("inbox.no_sender")),
                subject,
                date: format::list_date(m.date, ctx.now),
                iso_date: format::iso(m.date),
                size: format::size(m.size),
                seen: m.seen,
                conversation,
                conversation_text: t.fill(
                    "inbox.conversation_count",
                    &[("count", &conversation.to_string())],
                ),
            }
        })
        .collect();
    let here = query.href(page);
    // After sending: "1" the Sent copy was kept, "0" it could not be.
    let notice = match (folder.as_str(), ctx.query.get("sent")) {
        (SENT, Some("1")) => Some(t.get("sent.notice").to_string()),
        (SENT, Some("0")) => Some(t.get("sent.no_copy").to_string()),
        _ => done_notice(ctx),
    };
    let column = |key: SortKey, label: &str, class: &'static str| SortColumn {
        label: t.get(label).to_string(),
        href: query.sort_href(key),
        aria_sort: query.aria_sort(key),
        class,
    };
    let view = InboxPage {
        t,
        chrome: Chrome::new(t, "inbox.title", &here, Some(bar)).titled(&heading),
        heading,
        empty_text: if folder == INBOX {
            t.get("inbox.empty").to_string()
        } else {
            t.get("inbox.empty_folder").to_string()
        },
        notice,
        rows,
        total_text: t.fill("inbox.total", &[("total", &listing.total.to_string())]),
        pages,
        page_of_text: t.fill(
            "inbox.page_of",
            &[("page", &page.to_string()), ("pages", &pages.to_string())],
        ),
        prev_href: (page > 1).then(|| query.href(page - 1)),
        next_href: (page < pages).then(|| query.href(page + 1)),
        quota: match quota_bar(webmail, t, &session.user) {
            Ok(q) => q,
            Err(err) => return internal(ctx, &err),
        },
        csrf_token: session.csrf_token.clone(),
        list: ListFields {
            folder: folder.clone(),
            sort: key_name(query.key),
            order: if query.descending { "desc" } else { "asc" },
            page,
            // Back to this flat list even when the saved view is grouped.
            view: if saved == ListView::Conversations {
                ListView::Messages.name()
            } else {
                ""
            },
        },
        columns: vec![
            column(SortKey::From, "inbox.col_from", "from"),
            column(SortKey::Subject, "inbox.col_subject", "subject"),
            column(SortKey::Date, "inbox.col_date", "date"),
            column(SortKey::Size, "inbox.col_size", "size"),
        ],
        targets: move_targets(t, &folders),
        in_trash: folder == TRASH,
        grouped_href: super::conversation_list::href(&folder, true, 1),
    };
    pages::render(200, &view)
}

/// The user's usage against their quota (own, class's, or the configured default).
fn quota_bar(webmail: &Webmail, t: &Catalog, user: &str) -> Result<QuotaBar, StoreError> {
    let usage = webmail.store.usage(user)?;
    let defaults = DefaultQuota {
        bytes: webmail.config.mailbox.default_quota.0,
        messages: webmail.config.mailbox.default_quota_messages,
    };
    let limit = match webmail.directory.user(user) {
        Ok(Some(u)) => Quota::of(&webmail.directory, &u, defaults).bytes,
        _ => defaults.bytes,
    };
    let used = format::size(usage.bytes);
    if limit == 0 {
        return Ok(QuotaBar {
            text: t.fill("quota.used_unlimited", &[("used", &used)]),
            percent: None,
            warning: None,
        });
    }
    let percent = (u128::from(usage.bytes) * 100 / u128::from(limit)).min(100) as u64;
    Ok(QuotaBar {
        text: t.fill(
            "quota.used_of",
            &[
                ("used", &used),
                ("limit", &format::size(limit)),
                ("percent", &percent.to_string()),
            ],
        ),
        percent: Some(percent),
        warning: (percent >= 90).then(|| t.get("quota.nearly_full").to_string()),
    })
}

fn non_empty(text: &str, fallback: &str) -> String {
    if text.trim().is_empty() {
        fallback.to_string()
    } else {
        text.to_string()
    }
}

fn images_allowed(ctx: &Ctx<'_>) -> bool {
    ctx.query.get("images") == Some("1")
}

/// `GET /mail/message/{id}`: the message, marked as seen.
pub fn message(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session, id: &MessageId) -> Reply {
    let t = ctx.lang.catalog();
    let stored = match webmail.store.message(&session.user, id) {
        Ok(Some(stored)) => stored,
        Ok(None) => return pages::problem(ctx.lang, Problem::NotFound, None),
        Err(err) => return internal(ctx, &err),
    };
    if !stored.summary.seen {
        if let Err(err) = webmail.store.set_seen(&session.user, id, true) {
            // Showing the message matters more than the flag; log and go on.
            tracing::warn!(%err, "could not mark message seen");
        }
    }
    let images = images_allowed(ctx);
    let rendered = crate::mime::render(&stored.raw, images);
    let folder = stored.summary.folder.clone();
    let folders = user_folders(webmail, &session.user);
    let bar = user_bar(webmail, t, session, &folders, Some(&folder));
    let folder_name = display_name(t, &folders, &folder).unwrap_or_default();
    let href = message_href(&id.to_string());
    let date = rendered.date.unwrap_or(stored.summary.date);
    let html_src = rendered.html.as_ref().map(|_| {
        if images {
            format!("{href}/body?images=1")
        } else {
            format!("{href}/body")
        }
    });
    let compose_with = |action: &str| format!("{}?{action}={id}", super::compose::PATH);
    let conversation = conversation_rows(webmail, t, session, &folders, id, ctx.now);
    let view = MessagePage {
        t,
        id: id.to_string(),
        add_sender_href: add_sender_href(&stored.raw),
        csrf_token: session.csrf_token.clone(),
        back_href: list_href(&folder),
        back_text: t.fill("message.back", &[("folder", &folder_name)]),
        targets: move_targets(t, &folders),
        flagged: stored.summary.flagged,
        in_trash: folder == TRASH,
        folder,
        raw_href: format!("{href}/raw"),
        reply_href: compose_with("reply"),
        reply_all_href: compose_with("reply_all"),
        forward_href: compose_with("forward"),
        forward_attached_href: compose_with("forward_attached"),
        chrome: Chrome::new(t, "inbox.title", &href, Some(bar)),
        subject: non_empty(&rendered.subject, t.get("inbox.no_subject")),
        from: non_empty(&rendered.from, t.get("inbox.no_sender")),
        to: rendered.to,
        cc: rendered.cc,
        date: if date == 0 {
            t.get("message.unknown_date").to_string()
        } else {
            format::date_time(date)
        },
        show_images_href: (rendered.remote_images_blocked && !images)
            .then(|| format!("{href}?images=1")),
        html_src,
        text: rendered.text.filter(|_| rendered.html.is_none()),
        attachments: rendered
            .attachments
            .iter()
            .map(|a| AttachmentRow {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: format::size(a.size as u64),
            })
            .collect(),
        conversation_heading: t.fill(
            "message.conversation",
            &[("count", &conversation.len().to_string())],
        ),
        conversation,
    };
    pages::render(200, &view)
}

/// The contacts form filled with the message's (first) sender.
fn add_sender_href(raw: &[u8]) -> Option<String> {
    use crate::web::form::encode;
    let sender = crate::mime::original::read(raw).from.into_iter().next()?;
    let mut href = format!(
        "{}?add={}",
        super::contacts_page::PATH,
        encode(&sender.address)
    );
    if let Some(name) = sender.name.filter(|n| !n.is_empty()) {
        href.push_str(&format!("&name={}", encode(&name)));
    }
    href.push_str("#contact-form");
    Some(href)
}

/// The message's conversation for its page: empty when it stands alone
/// (or cannot be read: the message itself matters more).
fn conversation_rows(
    webmail: &Webmail,
    t: &Catalog,
    session: &Session,
    folders: &[UserFolder],
    id: &MessageId,
    now: i64,
) -> Vec<ConversationRow> {
    let messages = match webmail.store.conversation(&session.user, id) {
        Ok(messages) if messages.len() > 1 => messages,
        Ok(_) => return Vec::new(),
        Err(err) => {
            tracing::warn!(%err, "conversation unavailable");
            return Vec::new();
        }
    };
    messages
        .into_iter()
        .map(|m| ConversationRow {
            href: if m.folder == DRAFTS {
                format!("{}?draft={}", super::compose::PATH, m.id)
            } else {
                message_href(&m.id.to_string())
            },
            from: non_empty(&m.from, t.get("inbox.no_sender")),
            subject: non_empty(&m.subject, t.get("inbox.no_subject")),
            date: format::list_date(m.date, now),
            iso_date: format::iso(m.date),
            folder: display_name(t, folders, &m.folder).unwrap_or_default(),
            current: &m.id == id,
        })
        .collect()
}

/// `GET /mail/message/{id}/body[?images=1]`: the sanitized HTML alone.
pub fn body(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session, id: &MessageId) -> Reply {
    let stored = match webmail.store.message(&session.user, id) {
        Ok(Some(stored)) => stored,
        Ok(None) => return pages::problem(ctx.lang, Problem::NotFound, None),
        Err(err) => return internal(ctx, &err),
    };
    let images = images_allowed(ctx);
    let rendered = crate::mime::render(&stored.raw, images);
    let html = rendered.html.unwrap_or_default();
    pages::render(200, &BodyDocument { html: &html })
        .with_header("Content-Security-Policy", body_csp(images))
        .with_header("X-Frame-Options", "SAMEORIGIN")
}

/// `GET /mail/message/{id}/raw`: the message source as plain text, for
/// people who need the headers (e.g. Authentication-Results, Received).
pub fn raw(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session, id: &MessageId) -> Reply {
    match webmail.store.message(&session.user, id) {
        Ok(Some(stored)) => Reply::text(200, &String::from_utf8_lossy(&stored.raw))
            .with_header("Content-Security-Policy", "default-src 'none'; sandbox")
            .with_header("Content-Disposition", "inline"),
        Ok(None) => pages::problem(ctx.lang, Problem::NotFound, None),
        Err(err) => internal(ctx, &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_numbers_are_strict() {
        assert_eq!(page_number(None), Some(1));
        assert_eq!(page_number(Some("1")), Some(1));
        assert_eq!(page_number(Some("42")), Some(42));
        for bad in [
            "",
            "0",
            "-1",
            "+2",
            "1.5",
            "abc",
            " 1",
            "99999999999999999999",
        ] {
            assert_eq!(page_number(Some(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn page_counts() {
        assert_eq!(page_count(0, 50), 1);
        assert_eq!(page_count(50, 50), 1);
        assert_eq!(page_count(51, 50), 2);
        assert_eq!(page_count(10, 0), 10);
    }

    #[test]
    fn body_csp_allows_remote_images_only_when_asked() {
        assert!(!body_csp(false).contains("https:"));
        assert!(body_csp(true).contains("img-src data: cid: https: http:"));
        for csp in [body_csp(false), body_csp(true)] {
            assert!(csp.starts_with("default-src 'none';"));
            assert!(csp.contains("frame-ancestors 'self'"));
            assert!(!csp.contains("script"));
        }
    }
}
