//! MIME parsing for display: the header summary stored with each message
//! and the rendering the webmail shows (text, sanitized HTML, attachments);
//! and the webmail's side of writing mail: `compose` builds outgoing
//! messages (mail-builder), `original` reads a stored one back for a reply,
//! forward or resumed draft.
//!
//! Parsing is mail-parser's; this module adds what it lacks for Korean mail
//! (`charset.rs`: ISO-2022-KR, CP949 labels, unlabelled EUC-KR) and the
//! HTML policy (`html.rs`: ammonia, remote images blocked by default).
//! Owns nothing on disk or in memory beyond one call.
//!
//! Untrusted input: every byte of `raw` (mail from anyone). **Invariant:**
//! `summarize` and `render` never panic and never fail; malformed mail
//! renders with whatever text is recoverable. As a last line of defence a
//! panic inside a parser is caught and the raw text shown instead.

mod charset;
pub mod compose;
pub mod header_section;
mod html;
pub mod original;
#[cfg(test)]
mod tests;

use std::panic::{catch_unwind, AssertUnwindSafe};

use mail_parser::{
    Address, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

/// The headers the folder list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderSummary {
    /// `Name <addr>` list, "" when absent.
    pub from: String,
    /// Decoded subject, "" when absent.
    pub subject: String,
    /// Header `Date` as unix seconds, if present and valid.
    pub date: Option<i64>,
    /// The Message-ID that starts this message's conversation (without
    /// angle brackets), if the message names any; see `thread_root`.
    pub thread: Option<String>,
}

/// One attachment as listed under a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// File name, "" if the part has none.
    pub name: String,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// A message ready for display.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedMessage {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub subject: String,
    pub date: Option<i64>,
    /// Plain text body (decoded to UTF-8, LF line ends).
    pub text: Option<String>,
    /// SANITIZED html body (ammonia), or None.
    pub html: Option<String>,
    /// True if remote images were removed from `html`.
    pub remote_images_blocked: bool,
    pub attachments: Vec<AttachmentInfo>,
}

/// From, Subject and Date of `raw`. Never panics.
pub fn summarize(raw: &[u8]) -> HeaderSummary {
    guarded(|| {
        let Some(msg) = MessageParser::default().parse_headers(raw) else {
            return HeaderSummary::default();
        };
        HeaderSummary {
            from: addresses(&msg, raw, HeaderName::From),
            subject: subject(&msg, raw),
            date: date(&msg),
            thread: thread_root(&msg),
        }
    })
    .unwrap_or_default()
}

/// Longest thread root kept (RFC 5322 does not bound a msg-id; real ones
/// are well under 100 bytes).
const MAX_THREAD_ROOT: usize = 250;

/// The conversation a message belongs to, named by its first message: the
/// first id of `References:` (RFC 5322 §3.6.4: the parent's references
/// followed by the parent, so the first is the root), else the first of
/// `In-Reply-To:`, else the message's own `Message-ID:` (it starts one).
fn thread_root(msg: &Message<'_>) -> Option<String> {
    let first = |v: &mail_parser::HeaderValue<'_>| {
        v.as_text_list()
            .and_then(|l| l.first())
            .map(|s| s.to_string())
    };
    let root = first(msg.references())
        .or_else(|| first(msg.in_reply_to()))
        .or_else(|| msg.message_id().map(str::to_string))?;
    let root = root.trim().trim_start_matches('<').trim_end_matches('>');
    (!root.is_empty() && root.len() <= MAX_THREAD_ROOT).then(|| root.to_string())
}

/// Renders `raw` for display; remote images stay only if
/// `allow_remote_images`. Never panics on any input.
pub fn render(raw: &[u8], allow_remote_images: bool) -> RenderedMessage {
    guarded(|| render_parsed(raw, allow_remote_images)).unwrap_or_else(|| RenderedMessage {
        text: Some(charset::decode_unlabelled(raw)),
        ..RenderedMessage::default()
    })
}

fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::error!("MIME parser panicked; showing raw text");
            None
        }
    }
}

fn render_parsed(raw: &[u8], allow_remote_images: bool) -> RenderedMessage {
    let Some(msg) = MessageParser::default().parse(raw) else {
        // Nothing parseable (e.g. empty input): show the bytes as text.
        let text = charset::decode_unlabelled(raw);
        return RenderedMessage {
            text: (!text.trim().is_empty()).then_some(text),
            ..RenderedMessage::default()
        };
    };
    let texts: Vec<String> = msg
        .text_body
        .iter()
        .filter_map(|&id| msg.parts.get(id as usize))
        .filter_map(|part| match &part.body {
            PartType::Text(t) => Some(
                redecode(raw, part)
                    .unwrap_or_else(|| t.to_string())
                    .replace("\r\n", "\n"),
            ),
            _ => None,
        })
        .collect();
    let html = msg
        .html_body
        .iter()
        .filter_map(|&id| msg.parts.get(id as usize))
        .find_map(|part| match &part.body {
            PartType::Html(h) => Some(redecode(raw, part).unwrap_or_else(|| h.to_string())),
            _ => None,
        })
        .map(|h| html::sanitize(&h, allow_remote_images));
    let (html, remote_images_blocked) = match html {
        Some((h, blocked)) => (Some(h), blocked),
        None => (None, false),
    };
    RenderedMessage {
        from: addresses(&msg, raw, HeaderName::From),
        to: addresses(&msg, raw, HeaderName::To),
        cc: addresses(&msg, raw, HeaderName::Cc),
        subject: subject(&msg, raw),
        date: date(&msg),
        text: (!texts.is_empty()).then(|| texts.join("\n\n")),
        html,
        remote_images_blocked,
        attachments: msg
            .attachments
            .iter()
            .filter_map(|&id| msg.parts.get(id as usize))
            .map(attachment)
            .collect(),
    }
}

/// Decodes a text part ourselves when mail-parser can't: charsets it maps
/// to U+FFFD or doesn't know (ISO-2022-KR, CP949 labels), and unlabelled
/// 8-bit text that isn't UTF-8 (EUC-KR in old Korean mail).
fn redecode(raw: &[u8], part: &MessagePart<'_>) -> Option<String> {
    let label = part.content_type().and_then(|ct| ct.attribute("charset"));
    let body = || {
        let bytes = raw
            .get(part.offset_body as usize..part.offset_end as usize)
            .unwrap_or_default();
        charset::transfer_decode(part.encoding, bytes)
    };
    match label {
        Some(label) if charset::needs_own_decoder(label) => Some(charset::decode(label, &body())),
        None => {
            let bytes = body();
            std::str::from_utf8(&bytes)
                .is_err()
                .then(|| charset::decode_unlabelled(&bytes))
        }
        Some(_) => None,
    }
}

fn attachment(part: &MessagePart<'_>) -> AttachmentInfo {
    let content_type = match part.content_type() {
        Some(ct) => match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub),
            None => ct.c_type.to_string(),
        },
        None => "application/octet-stream".to_string(),
    };
    let size = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.len(),
        PartType::Binary(b) | PartType::InlineBinary(b) => b.len(),
        PartType::Message(m) => m.raw_message.len(),
        PartType::Multipart(_) => 0,
    };
    AttachmentInfo {
        name: clean(part.attachment_name().unwrap_or_default()),
        content_type: clean(&content_type.to_ascii_lowercase()),
        size,
    }
}

/// Raw bytes of the first header `name` (value part, still encoded).
fn raw_header<'a>(msg: &Message<'_>, raw: &'a [u8], name: &HeaderName<'_>) -> Option<&'a [u8]> {
    let h = msg.headers().iter().find(|h| h.name == *name)?;
    raw.get(h.offset_start as usize..h.offset_end as usize)
}

/// Display text without control characters (CR, LF, NUL, ESC, ...).
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

fn subject(msg: &Message<'_>, raw: &[u8]) -> String {
    match raw_header(msg, raw, &HeaderName::Subject) {
        Some(r) if charset::header_needs_own_decoder(r) => clean(&charset::decode_header(r, false)),
        _ => clean(msg.subject().unwrap_or_default()),
    }
}

fn date(msg: &Message<'_>) -> Option<i64> {
    msg.date()
        .filter(|d| d.is_valid())
        .map(|d| d.to_timestamp())
}

/// An address header as `Name <addr>, addr, ...`.
fn addresses(msg: &Message<'_>, raw: &[u8], name: HeaderName<'_>) -> String {
    if let Some(r) = raw_header(msg, raw, &name).filter(|r| charset::header_needs_own_decoder(r)) {
        // Decode the words ourselves, then let mail-parser parse the
        // (now UTF-8) address list.
        let decoded = charset::decode_header(r, true);
        let header = format!("{}: {}\r\n\r\n", name.as_str(), decoded);
        let reparsed = MessageParser::default().parse_headers(header.as_bytes());
        if let Some(addr) = reparsed
            .as_ref()
            .and_then(|m| m.header(name.clone()))
            .and_then(|v| v.as_address())
        {
            return format_addresses(addr);
        }
        return clean(&decoded);
    }
    msg.header(name)
        .and_then(|v| v.as_address())
        .map(format_addresses)
        .unwrap_or_default()
}

fn format_addresses(addr: &Address<'_>) -> String {
    addr.iter()
        .filter_map(|a| {
            let name = a.name().map(clean).filter(|n| !n.is_empty());
            let address = a.address().map(clean).filter(|n| !n.is_empty());
            match (name, address) {
                (Some(n), Some(a)) if n != a => Some(format!("{n} <{a}>")),
                (_, Some(a)) => Some(a),
                (Some(n), None) => Some(n),
                (None, None) => None,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
