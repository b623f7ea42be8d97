//! The webmail pages as askama templates (`templates/webmail/*.html`) and the
//! one function that renders any of them into a reply.
//!
//! Owns: the data each page shows, already turned into display strings.
//!
//! Invariants:
//! - Every value is HTML-escaped by askama; the only `|safe` is in
//!   `body.html`, for mime's already-sanitized HTML, served as its own
//!   document in a sandboxed frame.
//! - Text comes from the catalog (`t`), never from the templates.
//!
//! Reads untrusted input: message headers and bodies (rendered escaped).

use askama::Template;

use super::folder_nav::FolderLink;
use crate::web::assets;
use crate::web::form::encode;
use crate::web::http::Reply;
use crate::web::i18n::{Catalog, Lang};

/// The frame around every page: language, assets, the logged-in bar.
pub struct Chrome {
    pub lang: &'static str,
    pub title: String,
    pub css_href: String,
    pub icon_href: String,
    pub switch_lang_href: String,
    pub switch_lang_code: &'static str,
    pub user: Option<UserBar>,
}

/// The header of a logged-in page.
pub struct UserBar {
    pub signed_in_text: String,
    pub unread_text: String,
    pub csrf_token: String,
    /// The folder list beside the page (empty: none shown).
    pub folders: Vec<FolderLink>,
    /// The user saved a language: the bar links to that setting instead
    /// of switching for one page.
    pub language_saved: bool,
}

impl Chrome {
    /// `path` is the page's own path (and query), for the switch-language
    /// link.
    pub fn new(t: &Catalog, title_key: &str, path: &str, user: Option<UserBar>) -> Chrome {
        let other = t.lang().other();
        let sep = if path.contains('?') { '&' } else { '?' };
        Chrome {
            lang: t.lang().code(),
            title: t.get(title_key).to_string(),
            css_href: assets::url("webmail.css"),
            icon_href: assets::url("favicon.svg"),
            switch_lang_href: format!("{path}{sep}lang={}", other.code()),
            switch_lang_code: other.code(),
            user,
        }
    }
}

impl Chrome {
    /// The same frame with a title of the caller's (e.g. a folder's name).
    pub fn titled(mut self, title: &str) -> Chrome {
        self.title = title.to_string();
        self
    }
}

impl UserBar {
    pub fn new(t: &Catalog, user: &str, unread: usize, csrf_token: &str) -> UserBar {
        UserBar {
            signed_in_text: t.fill("nav.signed_in_as", &[("user", user)]),
            unread_text: t.fill("nav.unread", &[("count", &unread.to_string())]),
            csrf_token: csrf_token.to_string(),
            folders: Vec::new(),
            language_saved: false,
        }
    }

    /// The same bar with the folder list.
    pub fn with_folders(mut self, folders: Vec<FolderLink>) -> UserBar {
        self.folders = folders;
        self
    }
}

/// A folder a message can be moved to (`name` indented by depth).
pub struct MoveTarget {
    pub id: String,
    pub name: String,
}

/// A sortable column header.
pub struct SortColumn {
    pub label: String,
    pub href: String,
    /// `aria-sort`: "ascending", "descending" or "none".
    pub aria_sort: &'static str,
    pub class: &'static str,
}

/// The hidden fields that bring an action back to the list it came from.
pub struct ListFields {
    pub folder: String,
    pub sort: &'static str,
    pub order: &'static str,
    pub page: usize,
    /// `view=` to come back to ("messages", "conversations"), or "" for
    /// the user's saved view.
    pub view: &'static str,
}

#[derive(Template)]
#[template(path = "webmail/login.html")]
pub struct LoginPage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    pub csrf_token: String,
    pub address: String,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// One line of the message list.
pub struct MessageRow {
    pub id: String,
    pub flagged: bool,
    pub answered: bool,
    pub href: String,
    pub from: String,
    pub subject: String,
    pub date: String,
    pub iso_date: String,
    pub size: String,
    pub seen: bool,
    /// Messages in its conversation (1: it stands alone), and that in
    /// words for screen readers.
    pub conversation: usize,
    pub conversation_text: String,
}

/// One message of the conversation shown under a message.
pub struct ConversationRow {
    pub href: String,
    pub from: String,
    pub subject: String,
    pub date: String,
    pub iso_date: String,
    pub folder: String,
    /// The message being read (shown, not linked).
    pub current: bool,
}

#[derive(Template)]
#[template(path = "webmail/inbox.html")]
pub struct InboxPage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    /// The folder's name, as the page heading.
    pub heading: String,
    pub empty_text: String,
    /// A confirmation to show once (e.g. "sent").
    pub notice: Option<String>,
    pub rows: Vec<MessageRow>,
    pub total_text: String,
    pub pages: usize,
    pub page_of_text: String,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub quota: QuotaBar,
    pub csrf_token: String,
    pub list: ListFields,
    pub columns: Vec<SortColumn>,
    pub targets: Vec<MoveTarget>,
    /// In Trash, "delete" means for good.
    pub in_trash: bool,
    /// The same folder grouped by conversation.
    pub grouped_href: String,
}

/// How full the user's mailbox is (a `<meter>`, no script needed).
pub struct QuotaBar {
    pub text: String,
    /// 0-100 when there is a limit.
    pub percent: Option<u64>,
    /// Set when the mailbox is at least 90 % full.
    pub warning: Option<String>,
}

pub struct AttachmentRow {
    pub name: String,
    pub content_type: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "webmail/message.html")]
pub struct MessagePage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    pub id: String,
    /// "Add to address book" for the sender (the contacts form, filled).
    pub add_sender_href: Option<String>,
    pub csrf_token: String,
    /// The list of the message's folder.
    pub back_href: String,
    pub back_text: String,
    pub folder: String,
    pub targets: Vec<MoveTarget>,
    pub flagged: bool,
    pub in_trash: bool,
    /// The message source (`/raw`).
    pub raw_href: String,
    /// Where reply, reply all, forward and forward-as-attachment lead.
    pub reply_href: String,
    pub reply_all_href: String,
    pub forward_href: String,
    pub forward_attached_href: String,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub date: String,
    /// The link that shows remote images, when some were blocked.
    pub show_images_href: Option<String>,
    /// Where the sandboxed frame loads the sanitized HTML from.
    pub html_src: Option<String>,
    pub text: Option<String>,
    pub attachments: Vec<AttachmentRow>,
    /// The whole conversation, oldest first, when it has more than this
    /// message, under its heading.
    pub conversation: Vec<ConversationRow>,
    pub conversation_heading: String,
}

/// An attachment carried over from a draft or a forwarded message, with
/// the checkbox that keeps it.
pub struct CarriedRow {
    pub index: usize,
    pub name: String,
    pub size: String,
    pub kept: bool,
}

/// The compose form, filled with what the user wrote (or what a reply,
/// forward or draft brings).
#[derive(Template)]
#[template(path = "webmail/compose.html")]
pub struct ComposePage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    pub csrf_token: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub in_reply_to: String,
    pub references: String,
    pub carry_from: String,
    pub attach_original: String,
    pub carried: Vec<CarriedRow>,
    /// "The original message is attached: ..." when forwarding it whole.
    pub original_text: Option<String>,
    pub limit_text: String,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub error_details: Vec<String>,
    /// The recipient fields' `<datalist>`: address book, then collected
    /// addresses (`directory::contacts`).
    pub suggestions: Vec<crate::directory::contacts::Suggestion>,
    /// `static/suggest.js`, which asks `/mail/suggest` while typing.
    pub suggest_src: String,
}

/// The sanitized HTML body as its own document (for the sandboxed frame).
#[derive(Template)]
#[template(path = "webmail/body.html")]
pub struct BodyDocument<'a> {
    pub html: &'a str,
}

#[derive(Template)]
#[template(path = "webmail/error.html")]
pub struct ErrorPage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
}

/// Renders a page into a reply; a template failure is logged and becomes a
/// plain 500 rather than a half page.
pub fn render(status: u16, page: &impl Template) -> Reply {
    match page.render() {
        Ok(html) => Reply::html(status, html),
        Err(err) => {
            tracing::error!(%err, "page template failed to render");
            Reply::text(500, "500 Internal Server Error")
        }
    }
}

/// The kinds of error page, each with its status and catalog strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    NotFound,
    BadRequest,
    BadPage,
    FormExpired,
    TooLarge,
    Method,
    Forbidden,
    Internal,
}

impl Problem {
    fn parts(self) -> (u16, &'static str, &'static str) {
        match self {
            Problem::NotFound => (404, "error.not_found_title", "error.not_found"),
            Problem::BadRequest => (400, "error.bad_request_title", "error.bad_request"),
            Problem::BadPage => (400, "error.bad_request_title", "error.bad_page"),
            Problem::FormExpired => (403, "error.form_expired_title", "error.form_expired"),
            Problem::TooLarge => (413, "error.too_large_title", "error.too_large"),
            Problem::Method => (405, "error.method_title", "error.method"),
            Problem::Forbidden => (403, "error.forbidden_title", "error.forbidden"),
            Problem::Internal => (500, "error.internal_title", "error.internal"),
        }
    }
}

/// A localized error page that says what is wrong and what to do.
pub fn problem(lang: Lang, problem: Problem, user: Option<UserBar>) -> Reply {
    let (_, _, message) = problem.parts();
    problem_saying(lang, problem, lang.catalog().get(message).to_string(), user)
}

/// The error page of `problem` with a message of the caller's (already
/// localized, e.g. with a limit filled in).
pub fn problem_saying(
    lang: Lang,
    problem: Problem,
    message: String,
    user: Option<UserBar>,
) -> Reply {
    let t = lang.catalog();
    let (status, heading, _) = problem.parts();
    let page = ErrorPage {
        t,
        chrome: Chrome::new(t, heading, "/mail", user),
        heading: t.get(heading).to_string(),
        message,
    };
    render(status, &page)
}

/// The path of a message's page.
pub fn message_href(id: &str) -> String {
    format!("/mail/message/{}", encode(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_senders_are_escaped() {
        let t = Lang::Ko.catalog();
        let page = InboxPage {
            t,
            chrome: Chrome::new(t, "inbox.title", "/mail", None),
            heading: t.get("inbox.title").into(),
            empty_text: String::new(),
            notice: None,
            rows: vec![MessageRow {
                id: "node-a.1".into(),
                flagged: true,
                answered: false,
                href: message_href("abc"),
                from: "\"Evil\" <evil@example.com>".into(),
                subject: "<script>alert(1)</script>".into(),
                date: "14:07".into(),
                iso_date: String::new(),
                size: "1 KB".into(),
                seen: false,
                conversation: 2,
                conversation_text: "<q>2</q>".into(),
            }],
            total_text: String::new(),
            pages: 1,
            page_of_text: String::new(),
            prev_href: None,
            next_href: None,
            quota: QuotaBar {
                text: "<b>quota</b>".into(),
                percent: Some(95),
                warning: Some(t.get("quota.nearly_full").into()),
            },
            csrf_token: "tok".into(),
            list: ListFields {
                folder: "INBOX".into(),
                sort: "date",
                order: "desc",
                page: 1,
                view: "",
            },
            columns: Vec::new(),
            targets: vec![MoveTarget {
                id: "node-a.2".into(),
                name: "<script>f</script>".into(),
            }],
            in_trash: false,
            grouped_href: "/mail?view=conversations".into(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<b>quota"), "{html}");
        assert!(html.contains("value=\"95\""));
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;")
        );
        assert!(!html.contains("<evil@"));
        assert!(!html.contains("<script>f"));
        assert!(html.contains("<html lang=\"ko\">"));
        assert!(html.contains(t.get("inbox.unread_label")));
    }

    #[test]
    fn message_text_and_headers_are_escaped() {
        let t = Lang::En.catalog();
        let page = MessagePage {
            t,
            chrome: Chrome::new(t, "inbox.title", "/mail/message/x", None),
            id: "node-a.1".into(),
            add_sender_href: Some("/mail/contacts?add=\"><script>y</script>".into()),
            csrf_token: "tok".into(),
            back_href: "/mail".into(),
            back_text: "back".into(),
            folder: "INBOX".into(),
            targets: Vec::new(),
            flagged: false,
            in_trash: false,
            raw_href: "/mail/message/node-a.1/raw".into(),
            reply_href: String::new(),
            reply_all_href: String::new(),
            forward_href: String::new(),
            forward_attached_href: String::new(),
            subject: "<script>x</script>".into(),
            from: "<img src=x onerror=alert(1)>".into(),
            to: String::new(),
            cc: String::new(),
            date: String::new(),
            show_images_href: None,
            html_src: None,
            text: Some("</pre><script>alert(2)</script>".into()),
            attachments: vec![AttachmentRow {
                name: "<b>a.pdf".into(),
                content_type: "application/pdf".into(),
                size: "1 KB".into(),
            }],
            conversation: vec![ConversationRow {
                href: message_href("abc"),
                from: "<i>kim</i>".into(),
                subject: "<u>re</u>".into(),
                date: String::new(),
                iso_date: String::new(),
                folder: "<s>f</s>".into(),
                current: false,
            }],
            conversation_heading: "<em>2</em>".into(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img src=x"));
        assert!(!html.contains("<b>a.pdf"));
        assert!(!html.contains("<i>kim") && !html.contains("<u>re") && !html.contains("<s>f"));
        assert!(!html.contains("<em>2"));
        assert!(html.contains("<html lang=\"en\">"));
    }

    #[test]
    fn error_pages_are_localized() {
        let reply = problem(Lang::Ko, Problem::NotFound, None);
        assert_eq!(reply.status, 404);
        let body = String::from_utf8(reply.body).unwrap();
        assert!(body.contains(Lang::Ko.catalog().get("error.not_found")));
        let reply = problem(Lang::En, Problem::FormExpired, None);
        assert_eq!(reply.status, 403);
    }
}
