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

use super::pages::{
    self, message_href, AttachmentRow, BodyDocument, Chrome, InboxPage, MessagePage, MessageRow,
    Problem, QuotaBar, UserBar,
};
use super::{Ctx, Webmail};
use crate::store::{MessageId, StoreError};
use crate::web::format;
use crate::web::http::Reply;
use crate::web::session::Session;

use crate::mailbox::folders::{DRAFTS, INBOX, JUNK, SENT};
use crate::mailbox::local_delivery::{DefaultQuota, Quota};
use crate::web::i18n::Catalog;

/// The folder named by `?folder=` (only the folders every user has, for
/// now); `None` for anything else.
fn folder_of(ctx: &Ctx<'_>) -> Option<&'static str> {
    match ctx.query.get("folder") {
        None | Some("INBOX") => Some(INBOX),
        Some("Junk") => Some(JUNK),
        Some("Sent") => Some(SENT),
        Some("Drafts") => Some(DRAFTS),
        Some(_) => None,
    }
}

/// The catalog key of a folder's name.
fn folder_title(folder: &str) -> &'static str {
    match folder {
        JUNK => "junk.title",
        SENT => "sent.title",
        DRAFTS => "drafts.title",
        _ => "inbox.title",
    }
}

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

/// The header bar of a logged-in page (with the unread count).
fn user_bar(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Result<UserBar, Reply> {
    let unread = webmail
        .store
        .unseen_count(&session.user, INBOX)
        .map_err(|err| internal(ctx, &err))?;
    Ok(UserBar::new(
        ctx.lang.catalog(),
        &session.user,
        unread,
        &session.csrf_token,
    ))
}

/// `GET /mail?page=N[&folder=Junk]`.
pub fn inbox(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let Some(requested) = page_number(ctx.query.get("page")) else {
        return pages::problem(ctx.lang, Problem::BadPage, None);
    };
    let Some(folder) = folder_of(ctx) else {
        return pages::problem(ctx.lang, Problem::NotFound, None);
    };
    let size = webmail.config.mailbox.page_size.max(1);
    let mut page = requested;
    let mut listing = match webmail
        .store
        .list(&session.user, folder, (page - 1) * size, size)
    {
        Ok(listing) => listing,
        Err(err) => return internal(ctx, &err),
    };
    let pages = page_count(listing.total, size);
    if page > pages {
        // Past the end (mail was deleted meanwhile): show the last page.
        page = pages;
        listing = match webmail
            .store
            .list(&session.user, folder, (page - 1) * size, size)
        {
            Ok(listing) => listing,
            Err(err) => return internal(ctx, &err),
        };
    }
    let bar = match user_bar(webmail, ctx, session) {
        Ok(bar) => bar,
        Err(reply) => return reply,
    };
    let rows = listing
        .messages
        .iter()
        .map(|m| MessageRow {
            // A draft opens in the compose form, to be finished.
            href: if folder == DRAFTS {
                format!("{}?draft={}", super::compose::PATH, m.id)
            } else {
                message_href(&m.id.to_string())
            },
            from: non_empty(&m.from, t.get("inbox.no_sender")),
            subject: non_empty(&m.subject, t.get("inbox.no_subject")),
            date: format::list_date(m.date, ctx.now),
            iso_date: format::iso(m.date),
            size: format::size(m.size),
            seen: m.seen,
        })
        .collect();
    let title = folder_title(folder);
    let here = if folder == INBOX {
        "/mail".to_string()
    } else {
        format!("/mail?folder={folder}")
    };
    let link = |n: usize| {
        if folder == INBOX {
            format!("/mail?page={n}")
        } else {
            format!("/mail?folder={folder}&page={n}")
        }
    };
    // After sending: "1" the Sent copy was kept, "0" it could not be.
    let notice = match (folder, ctx.query.get("sent")) {
        (SENT, Some("1")) => Some(t.get("sent.notice").to_string()),
        (SENT, Some("0")) => Some(t.get("sent.no_copy").to_string()),
        _ => None,
    };
    let view = InboxPage {
        t,
        chrome: Chrome::new(t, title, &here, Some(bar)),
        heading: t.get(title).to_string(),
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
        prev_href: (page > 1).then(|| link(page - 1)),
        next_href: (page < pages).then(|| link(page + 1)),
        quota: match quota_bar(webmail, t, &session.user) {
            Ok(q) => q,
            Err(err) => return internal(ctx, &err),
        },
    };
    pages::render(200, &view)
}

/// The user's usage against their quota (own, or the configured default).
fn quota_bar(webmail: &Webmail, t: &Catalog, user: &str) -> Result<QuotaBar, StoreError> {
    let usage = webmail.store.usage(user)?;
    let defaults = DefaultQuota {
        bytes: webmail.config.mailbox.default_quota.0,
        messages: webmail.config.mailbox.default_quota_messages,
    };
    let limit = match webmail.directory.user(user) {
        Ok(Some(u)) => Quota::of(&u, defaults).bytes,
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
    let bar = match user_bar(webmail, ctx, session) {
        Ok(bar) => bar,
        Err(reply) => return reply,
    };
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
    let view = MessagePage {
        t,
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
    };
    pages::render(200, &view)
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
