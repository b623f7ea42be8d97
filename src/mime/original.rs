//! Reading a stored message back for a reply, a forward or a resumed draft:
//! its addresses, thread identifiers, subject, text and attachments.
//!
//! Owns: nothing beyond one call; the rules of RFC 5322 §3.6.4 for
//! In-Reply-To and References, and how "Re:"/"Fwd:" are added (never
//! doubled).
//!
//! Invariants:
//! - `read` never panics and never fails: missing or malformed fields are
//!   simply absent (a panic inside the parser is caught, as in `render`).
//! - Only addresses that `compose::parse_address_list` would accept come
//!   out, so a prefilled form always sends.
//! - Message ids that could not be written back safely (spaces, brackets,
//!   controls, over-long) are dropped, never passed on.
//!
//! Reads untrusted input: yes, stored messages from anyone.

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::compose::{Attachment, Mailbox};
use super::{guarded, render, subject};

/// Most ids kept in a References field (the first and the newest).
const MAX_REFERENCES: usize = 50;
/// Longest message id passed on.
const MAX_ID: usize = 250;

/// What a reply, forward or resumed draft needs of a stored message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub subject: String,
    pub date: Option<i64>,
    /// The body as plain text (the text part, else the HTML's text).
    pub text: String,
    pub attachments: Vec<Attachment>,
}

/// Reads `raw`; anything unreadable is left out.
pub fn read(raw: &[u8]) -> Original {
    guarded(|| {
        let Some(msg) = MessageParser::default().parse(raw) else {
            return Original::default();
        };
        let rendered = render(raw, false);
        let text = match (rendered.text, rendered.html) {
            (Some(text), _) => text,
            (None, Some(html)) => html_text(&html),
            (None, None) => String::new(),
        };
        Original {
            message_id: msg.message_id().and_then(clean_id),
            in_reply_to: ids(msg.in_reply_to()),
            references: ids(msg.references()),
            from: mailboxes(msg.from()),
            reply_to: mailboxes(msg.reply_to()),
            to: mailboxes(msg.to()),
            cc: mailboxes(msg.cc()),
            bcc: mailboxes(msg.bcc()),
            subject: subject(&msg, raw),
            date: rendered.date,
            text,
            attachments: attachments(&msg),
        }
    })
    .unwrap_or_default()
}

/// `id` (without brackets) when it can be written back into a header
/// safely: ASCII, no spaces, brackets, quotes or controls, not too long.
pub fn clean_id(id: &str) -> Option<String> {
    let id = id.trim();
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id.is_ascii()
        && !id
            .bytes()
            .any(|b| b.is_ascii_control() || b" <>\"".contains(&b));
    ok.then(|| id.to_string())
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|id| clean_id(id))
        .collect()
}

fn mailboxes(list: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(list) = list else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim();
            let name = addr.name().map(str::trim).filter(|n| !n.is_empty());
            let typed = match name {
                Some(n) => Mailbox {
                    name: Some(n.to_string()),
                    address: address.to_string(),
                }
                .display(),
                None => address.to_string(),
            };
            // Only what the compose form itself would accept.
            super::compose::parse_address_list(&typed)
                .ok()?
                .into_iter()
                .next()
        })
        .collect()
}

fn attachments(msg: &Message<'_>) -> Vec<Attachment> {
    msg.attachments()
        .enumerate()
        .map(|(i, part)| {
            let content_type = match part.content_type() {
                Some(ct) => match &ct.c_subtype {
                    Some(sub) => format!("{}/{}", ct.c_type, sub),
                    None => ct.c_type.to_string(),
                },
                None => "application/octet-stream".into(),
            }
            .to_ascii_lowercase();
            let name = part
                .attachment_name()
                .map(|n| n.chars().filter(|c| !c.is_control()).collect::<String>())
                .filter(|n| !n.trim().is_empty());
            match &part.body {
                PartType::Message(inner) => {
                    let name = name.unwrap_or_else(|| {
                        let subject = inner.subject().unwrap_or("message");
                        format!("{}.eml", subject.chars().take(60).collect::<String>())
                    });
                    Attachment::message(&name, inner.raw_message())
                }
                _ => Attachment {
                    name: name.unwrap_or_else(|| format!("attachment-{}", i + 1)),
                    content_type,
                    data: part.contents().to_vec(),
                },
            }
        })
        .collect()
}

/// The plain text of sanitized HTML: block ends become line breaks, tags
/// go, the usual entities are decoded.
fn html_text(html: &str) -> String {
    let mut marked = html.to_string();
    for end in [
        "<br>", "</p>", "</div>", "</li>", "</tr>", "</h1>", "</h2>", "</h3>",
    ] {
        marked = marked.replace(end, &format!("{end}\n"));
    }
    let bare = ammonia::Builder::empty().clean(&marked).to_string();
    let text = bare
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank < 2 {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim().to_string()
}

/// "Re: " + subject, unless it already starts with "Re:" (any case).
pub fn reply_subject(subject: &str) -> String {
    prefixed(subject, "Re: ", &["re:"])
}

/// "Fwd: " + subject, unless it already starts with "Fwd:" or "Fw:".
pub fn forward_subject(subject: &str) -> String {
    prefixed(subject, "Fwd: ", &["fwd:", "fw:"])
}

fn prefixed(subject: &str, prefix: &str, known: &[&str]) -> String {
    let subject = subject.trim();
    let has = known.iter().any(|k| {
        subject
            .get(..k.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(k))
    });
    if has {
        subject.to_string()
    } else {
        format!("{prefix}{subject}")
    }
}

/// In-Reply-To and References of a reply to `parent` (RFC 5322 §3.6.4).
pub fn thread_ids(parent: &Original) -> (Option<String>, Vec<String>) {
    let mut references = if !parent.references.is_empty() {
        parent.references.clone()
    } else if parent.in_reply_to.len() == 1 {
        parent.in_reply_to.clone()
    } else {
        Vec::new()
    };
    if let Some(id) = &parent.message_id {
        references.push(id.clone());
    }
    if references.len() > MAX_REFERENCES {
        // Keep the thread's first message and the newest ones.
        let cut = references.len() - (MAX_REFERENCES - 1);
        references.drain(1..cut);
    }
    (parent.message_id.clone(), references)
}

/// To and Cc of a reply from `me`: to the Reply-To (else the From) of the
/// parent, or, with `all`, also to its other recipients (never to `me`,
/// never twice). A reply to one's own message goes to its recipients.
pub fn reply_recipients(parent: &Original, me: &str, all: bool) -> (Vec<Mailbox>, Vec<Mailbox>) {
    let me = crate::directory::address::normalize_address(me).unwrap_or_default();
    let from_me = !parent.from.is_empty() && parent.from.iter().all(|m| m.normalized() == me);
    let primary = if from_me {
        parent.to.clone()
    } else if !parent.reply_to.is_empty() {
        parent.reply_to.clone()
    } else {
        parent.from.clone()
    };
    let mut seen = vec![me];
    let mut take = |list: &[Mailbox]| {
        let mut out = Vec::new();
        for m in list {
            let key = m.normalized();
            if !seen.contains(&key) {
                seen.push(key);
                out.push(m.clone());
            }
        }
        out
    };
    let mut to = take(&primary);
    if !all {
        return (to, Vec::new());
    }
    to.extend(take(&parent.to));
    let cc = take(&parent.cc);
    (to, cc)
}

/// `text` quoted for a reply: each line behind "> " (RFC 3676 §4.5 style).
pub fn quote(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_string()
            } else if line.starts_with('>') {
                format!(">{line}")
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[path = "original_tests.rs"]
mod tests;
