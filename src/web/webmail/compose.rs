//! The compose form: a new message, a reply, reply all, a forward (inline
//! or as an attachment) or a resumed draft, put into the form; and the
//! form's state as it travels between the browser and `send.rs`.
//!
//! Owns: `ComposeState` (what the form holds), how each way in fills it,
//! and the upload limits (`ComposeLimits`).
//!
//! Invariants:
//! - The upload limit is derived from `engine.max_message_bytes`, never
//!   above it: attachments grow by a third when encoded (base64), so files
//!   and text together may use `UPLOAD_SHARE_PERCENT` of it.
//! - Messages named in the query (`reply=`, `draft=`, ...) are read through
//!   the store with the session's user: another user's id is "not found".
//! - New messages and replies start with the user's signature (from their
//!   settings) in the text, where they can still change it.
//! - Everything shown goes through askama's escaping (the body in a
//!   textarea, addresses in inputs).
//!
//! Reads untrusted input: the query (message ids), stored messages.

use std::str::FromStr;

use super::pages::{self, CarriedRow, Chrome, ComposePage, Problem};
use super::{Ctx, Webmail};
use crate::config::Config;
use crate::mime::compose::{Attachment, Mailbox};
use crate::mime::original::{self, Original};
use crate::store::MessageId;
use crate::web::format;
use crate::web::http::{Reply, MAX_FORM_BODY};
use crate::web::session::Session;

/// The compose form's path (GET shows it, POST sends or saves).
pub const PATH: &str = "/mail/compose";
/// Share of the engine's message size limit that files and text may use.
pub const UPLOAD_SHARE_PERCENT: u64 = 70;

/// How much one compose form may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComposeLimits {
    /// Files and text together, in bytes (shown on the form).
    pub upload_bytes: usize,
    /// The whole HTTP request: the upload plus the form's own overhead.
    pub request_bytes: usize,
    /// The built message (the engine's limit).
    pub message_bytes: usize,
}

impl ComposeLimits {
    pub fn from_config(config: &Config) -> ComposeLimits {
        let message = config.engine.max_message_bytes;
        let upload = message / 100 * UPLOAD_SHARE_PERCENT;
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        ComposeLimits {
            upload_bytes: to_usize(upload),
            request_bytes: to_usize(upload).saturating_add(MAX_FORM_BODY),
            message_bytes: to_usize(message),
        }
    }
}

/// What the compose form holds. Addresses and text are kept as typed, so
/// a refused message comes back exactly as the user left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeState {
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    /// Message ids without brackets, space-separated in `references`.
    pub in_reply_to: String,
    pub references: String,
    /// A message whose attachments this one carries (a draft, a forward).
    pub carry_from: Option<MessageId>,
    /// Which of those attachments are kept, by index.
    pub keep: Vec<bool>,
    /// A message attached whole (forward as attachment).
    pub attach_original: Option<MessageId>,
}

fn join(list: &[Mailbox]) -> String {
    list.iter()
        .map(Mailbox::display)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored message of this user, read for a reply, forward or draft.
pub(super) fn load(
    webmail: &Webmail,
    user: &str,
    id: &MessageId,
) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
    Ok(webmail.store.message(user, id)?.map(|m| m.raw))
}

/// How the form was asked for (`GET /mail/compose?...`).
enum Start {
    Blank,
    Reply(MessageId, bool),
    Forward(MessageId),
    ForwardAttached(MessageId),
    Draft(MessageId),
}

/// The way in named by the query; `None` when its message id is not one.
fn start_of(ctx: &Ctx<'_>) -> Option<Start> {
    let q = &ctx.query;
    let id = |value: &str| MessageId::from_str(value).ok();
    if let Some(v) = q.get("reply") {
        return id(v).map(|id| Start::Reply(id, false));
    }
    if let Some(v) = q.get("reply_all") {
        return id(v).map(|id| Start::Reply(id, true));
    }
    if let Some(v) = q.get("forward") {
        return id(v).map(Start::Forward);
    }
    if let Some(v) = q.get("forward_attached") {
        return id(v).map(Start::ForwardAttached);
    }
    if let Some(v) = q.get("draft") {
        return id(v).map(Start::Draft);
    }
    Some(Start::Blank)
}

/// `GET /mail/compose[?reply=ID|reply_all=ID|forward=ID|forward_attached=ID|draft=ID][&to=ADDR][&saved=1]`.
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let Some(start) = start_of(ctx) else {
        return pages::problem(ctx.lang, Problem::NotFound, None);
    };
    let t = ctx.lang.catalog();
    let mut state = ComposeState {
        to: ctx.query.get("to").unwrap_or("").to_string(),
        ..ComposeState::default()
    };
    let wants_signature = matches!(start, Start::Blank | Start::Reply(..));
    let id = match &start {
        Start::Blank => None,
        Start::Reply(id, _)
        | Start::Forward(id)
        | Start::ForwardAttached(id)
        | Start::Draft(id) => Some(id.clone()),
    };
    if let Some(id) = id {
        let raw = match load(webmail, &session.user, &id) {
            Ok(Some(raw)) => raw,
            Ok(None) => return pages::problem(ctx.lang, Problem::NotFound, None),
            Err(err) => {
                tracing::error!(%err, "store failed reading a message to compose from");
                return pages::problem(ctx.lang, Problem::Internal, None);
            }
        };
        let parent = original::read(&raw);
        match start {
            Start::Blank => {}
            Start::Reply(_, all) => fill_reply(&mut state, &parent, &session.user, all, ctx),
            Start::Forward(id) => fill_forward(&mut state, &parent, id, ctx),
            Start::ForwardAttached(id) => {
                state.subject = original::forward_subject(&parent.subject);
                state.attach_original = Some(id);
            }
            Start::Draft(id) => fill_draft(&mut state, &parent, id),
        }
    }
    if wants_signature {
        match webmail.directory.user_settings(&session.user) {
            Ok(settings) => state.body = with_signature(&state.body, &settings.signature),
            Err(err) => tracing::error!(%err, "user settings unreadable; no signature"),
        }
    }
    let feedback = Feedback {
        notice: (ctx.query.get("saved") == Some("1"))
            .then(|| t.get("compose.draft_saved").to_string()),
        ..Feedback::default()
    };
    render(webmail, ctx, session, &state, feedback)
}

/// `body` (empty or a reply's "\n\n" + quote) with the signature after
/// the place the user writes in and before any quote, behind the "-- "
/// line that mail programs recognise (RFC 3676 §4.3).
fn with_signature(body: &str, signature: &str) -> String {
    let signature = signature.trim_end();
    if signature.is_empty() {
        return body.to_string();
    }
    let rest = body.trim_start_matches('\n');
    let block = format!("\n\n-- \n{signature}\n");
    if rest.is_empty() {
        block
    } else {
        format!("{block}\n{rest}")
    }
}

fn fill_reply(state: &mut ComposeState, parent: &Original, user: &str, all: bool, ctx: &Ctx<'_>) {
    let t = ctx.lang.catalog();
    let (to, cc) = original::reply_recipients(parent, user, all);
    let (in_reply_to, references) = original::thread_ids(parent);
    state.to = join(&to);
    state.cc = join(&cc);
    state.subject = original::reply_subject(&parent.subject);
    state.in_reply_to = in_reply_to.unwrap_or_default();
    state.references = references.join(" ");
    let from = parent
        .from
        .first()
        .map(Mailbox::display)
        .unwrap_or_default();
    let date = parent.date.map(format::date_time).unwrap_or_default();
    let header = t.fill("compose.quote_header", &[("date", &date), ("from", &from)]);
    state.body = format!("\n\n{header}\n{}\n", original::quote(&parent.text));
}

fn fill_forward(state: &mut ComposeState, parent: &Original, id: MessageId, ctx: &Ctx<'_>) {
    let t = ctx.lang.catalog();
    state.subject = original::forward_subject(&parent.subject);
    let date = parent.date.map(format::date_time).unwrap_or_default();
    let mut block = format!("\n\n{}\n", t.get("compose.forward_header"));
    for (key, value) in [
        ("message.from", join(&parent.from)),
        ("message.date", date),
        ("message.subject", parent.subject.clone()),
        ("message.to", join(&parent.to)),
        ("message.cc", join(&parent.cc)),
    ] {
        if !value.is_empty() {
            block.push_str(&format!("{}: {value}\n", t.get(key)));
        }
    }
    block.push('\n');
    block.push_str(&parent.text);
    state.body = block;
    state.keep = vec![true; parent.attachments.len()];
    state.carry_from = Some(id);
}

fn fill_draft(state: &mut ComposeState, draft: &Original, id: MessageId) {
    state.to = join(&draft.to);
    state.cc = join(&draft.cc);
    state.bcc = join(&draft.bcc);
    state.subject = draft.subject.clone();
    state.body = draft.text.clone();
    state.in_reply_to = draft.in_reply_to.first().cloned().unwrap_or_default();
    state.references = draft.references.join(" ");
    state.keep = vec![true; draft.attachments.len()];
    state.carry_from = Some(id);
}

/// The attachments `state` carries from other stored messages: the kept
/// ones of `carry_from`, then `attach_original` whole. `Ok(None)` when one
/// of those messages is gone.
pub(super) fn carried_attachments(
    webmail: &Webmail,
    user: &str,
    state: &ComposeState,
) -> Result<Option<Vec<Attachment>>, crate::store::StoreError> {
    let mut out = Vec::new();
    if let Some(id) = &state.carry_from {
        let Some(raw) = load(webmail, user, id)? else {
            return Ok(None);
        };
        let files = original::read(&raw).attachments;
        out.extend(
            files
                .into_iter()
                .enumerate()
                .filter(|(i, _)| state.keep.get(*i).copied().unwrap_or(false))
                .map(|(_, file)| file),
        );
    }
    if let Some(id) = &state.attach_original {
        let Some(raw) = load(webmail, user, id)? else {
            return Ok(None);
        };
        out.push(Attachment::message(&original_name(&raw), &raw));
    }
    Ok(Some(out))
}

/// The file name of a message attached whole: its subject, `.eml`.
fn original_name(raw: &[u8]) -> String {
    let subject = crate::mime::summarize(raw).subject;
    let stem: String = subject
        .chars()
        .filter(|c| !c.is_control() && !"/\\:*?\"<>|".contains(*c))
        .take(60)
        .collect();
    let stem = stem.trim();
    if stem.is_empty() {
        "message.eml".into()
    } else {
        format!("{stem}.eml")
    }
}

/// The page policy plus our own script and its requests to us.
const COMPOSE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
script-src 'self'; connect-src 'self'";

/// Most suggestions in the recipient fields' list.
const SUGGESTED: usize = 300;

/// What the compose page says above the form, and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Feedback {
    pub status: u16,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// One line per refused item (e.g. each refused recipient).
    pub details: Vec<String>,
}

impl Default for Feedback {
    fn default() -> Feedback {
        Feedback {
            status: 200,
            notice: None,
            error: None,
            details: Vec::new(),
        }
    }
}

/// The compose page for `state`, with `feedback` above the form.
pub(super) fn render(
    webmail: &Webmail,
    ctx: &Ctx<'_>,
    session: &Session,
    state: &ComposeState,
    feedback: Feedback,
) -> Reply {
    let t = ctx.lang.catalog();
    let folders = super::mailbox::user_folders(webmail, &session.user);
    let bar = super::mailbox::user_bar(webmail, t, session, &folders, None);
    let mut carried = Vec::new();
    if let Some(id) = &state.carry_from {
        if let Ok(Some(raw)) = load(webmail, &session.user, id) {
            carried = original::read(&raw)
                .attachments
                .iter()
                .enumerate()
                .map(|(index, file)| CarriedRow {
                    index,
                    name: file.name.clone(),
                    size: format::size(file.data.len() as u64),
                    kept: state.keep.get(index).copied().unwrap_or(false),
                })
                .collect();
        }
    }
    let original_text = state.attach_original.as_ref().and_then(|id| {
        let raw = load(webmail, &session.user, id).ok()??;
        Some(t.fill(
            "compose.original_attached",
            &[("name", &original_name(&raw))],
        ))
    });
    let limits = ComposeLimits::from_config(&webmail.config);
    let page = ComposePage {
        t,
        chrome: Chrome::new(t, "compose.title", PATH, Some(bar)),
        csrf_token: session.csrf_token.clone(),
        from: session.user.clone(),
        to: state.to.clone(),
        cc: state.cc.clone(),
        bcc: state.bcc.clone(),
        subject: state.subject.clone(),
        body: state.body.clone(),
        in_reply_to: state.in_reply_to.clone(),
        references: state.references.clone(),
        carry_from: state
            .carry_from
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        attach_original: state
            .attach_original
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        carried,
        original_text,
        limit_text: t.fill(
            "compose.limit",
            &[("limit", &format::size(limits.upload_bytes as u64))],
        ),
        notice: feedback.notice,
        error: feedback.error,
        error_details: feedback.details,
        suggestions: webmail
            .directory
            .suggestions(&session.user, "", SUGGESTED)
            .unwrap_or_else(|err| {
                tracing::error!(%err, "address book unreadable; no suggestions");
                Vec::new()
            }),
        suggest_src: crate::web::assets::url("suggest.js"),
    };
    // The page's one script is ours (`static/suggest.js`), and it talks
    // only to us: no inline script, nothing from elsewhere.
    pages::render(feedback.status, &page).with_header("Content-Security-Policy", COMPOSE_CSP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compose_policy_only_adds_our_own_script() {
        let page = crate::web::http::PAGE_CSP;
        let extra = COMPOSE_CSP
            .strip_prefix(page)
            .expect("the page policy first");
        assert_eq!(extra, "; script-src 'self'; connect-src 'self'");
        assert!(!COMPOSE_CSP.contains("unsafe"));
    }

    #[test]
    fn the_upload_limit_never_exceeds_the_message_limit() {
        let mut config = crate::config::Config::from_text(
            std::path::Path::new("/etc/campusmail/appliance.toml"),
            "[node]\nname = \"a\"\nhostname = \"m.campus.test\"\n",
        )
        .unwrap();
        for max in [1024u64, 200_000, 50 * 1024 * 1024, u64::from(u32::MAX)] {
            config.engine.max_message_bytes = max;
            let limits = ComposeLimits::from_config(&config);
            let upload = limits.upload_bytes as u64;
            // Base64 makes 3 bytes 4, plus a CRLF every 76 characters.
            assert!(upload * 4 / 3 * 78 / 76 < max, "{max}");
            assert_eq!(limits.message_bytes as u64, max);
            assert!(limits.request_bytes > limits.upload_bytes);
        }
    }

    #[test]
    fn the_signature_goes_below_the_writing_space_and_above_the_quote() {
        assert_eq!(with_signature("", ""), "");
        assert_eq!(
            with_signature("", "김철수\n학생처"),
            "\n\n-- \n김철수\n학생처\n"
        );
        assert_eq!(
            with_signature("\n\nOn Monday, Lee wrote:\n> hi\n", "Kim  \n"),
            "\n\n-- \nKim\n\nOn Monday, Lee wrote:\n> hi\n"
        );
        assert_eq!(with_signature("\n\n> hi\n", ""), "\n\n> hi\n");
    }

    #[test]
    fn attached_messages_are_named_after_their_subject() {
        assert_eq!(
            original_name(b"Subject: =?utf-8?B?7ZqM7J2Y?= a/b\r\n\r\nx"),
            "회의 ab.eml"
        );
        assert_eq!(original_name(b"\r\n\r\nx"), "message.eml");
    }
}
