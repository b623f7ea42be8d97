//! Building the messages users write in the webmail (RFC 5322 and MIME),
//! with mail-builder: addresses, subject and file names in any language,
//! encoded as RFC 2047 encoded words and RFC 2231 parameters.
//!
//! Owns: nothing beyond one call.
//!
//! Invariants:
//! - Every message has From, Date, Message-ID (ours, with our host name)
//!   and MIME-Version; In-Reply-To and References only when replying.
//! - The built bytes use CRLF line ends and are 7-bit, except a forwarded
//!   message/rfc822 part that is itself 8-bit (sent with BODY=8BITMIME).
//! - Bcc appears only when asked for (drafts keep it; a sent message and
//!   its Sent copy never carry it, RFC 5322 §3.6.3).
//! - Text typed by users reaches header fields only through mail-builder's
//!   encoders, so no CR or LF can start a new field.
//!
//! Reads untrusted input: yes, everything the user typed or uploaded, and
//! (for forwarding) stored messages.

use std::borrow::Cow;

use base64::Engine;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use rand::RngCore;

use crate::directory::address::normalize_address;

/// Longest display name kept from what a user typed.
const MAX_NAME: usize = 200;

/// One address with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    /// As typed (trimmed); known to be a valid ASCII address.
    pub address: String,
}

impl Mailbox {
    /// `Name <addr>` (the name quoted when it needs to be) or `addr`, as a
    /// user would type it back into the form.
    pub fn display(&self) -> String {
        match &self.name {
            Some(name) if name.contains([',', ';', '"', '<', '>', '@', '(', ')']) => {
                format!(
                    "\"{}\" <{}>",
                    name.replace('\\', "\\\\").replace('"', "\\\""),
                    self.address
                )
            }
            Some(name) => format!("{name} <{}>", self.address),
            None => self.address.clone(),
        }
    }

    /// The normalized address, for comparisons.
    pub fn normalized(&self) -> String {
        normalize_address(&self.address).unwrap_or_else(|| self.address.to_ascii_lowercase())
    }
}

/// Parses what a user typed into To, Cc or Bcc: addresses separated by
/// commas or semicolons, each `addr`, `Name <addr>` or `"Name" <addr>`.
/// The error holds the piece that is not an address.
pub fn parse_address_list(input: &str) -> Result<Vec<Mailbox>, String> {
    let mut out = Vec::new();
    for piece in split_list(input) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let (name, address) = match (piece.rfind('<'), piece.ends_with('>')) {
            (Some(lt), true) => (Some(piece[..lt].trim()), &piece[lt + 1..piece.len() - 1]),
            _ => (None, piece),
        };
        // RFC 5322 §3.2.5: an unquoted display name holds no specials
        // (beyond the "." of obs-phrase) and no controls.
        let name_ok = name.is_none_or(|n| {
            n.starts_with('"') && n.ends_with('"') && n.len() >= 2
                || !n
                    .chars()
                    .any(|c| c.is_control() || "@:<>[]\\\"".contains(c))
        });
        if !name_ok {
            return Err(piece.to_string());
        }
        let name = name.map(unquote);
        let address = address.trim();
        let valid = address.is_ascii()
            && !address.contains(['<', '>', '"', ' '])
            && normalize_address(address).is_some();
        if !valid {
            return Err(piece.to_string());
        }
        let name = name
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_NAME)
                    .collect::<String>()
            })
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        out.push(Mailbox {
            name,
            address: address.to_string(),
        });
    }
    Ok(out)
}

/// Splits at `,` and `;` outside double quotes and angle brackets.
fn split_list(input: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' | ';' if !quoted && !angle => {
                pieces.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&input[start..]);
    pieces
}

/// A display name without its surrounding quotes and escapes.
fn unquote(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => name.to_string(),
    }
}

/// A file (or forwarded message) to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name as the user's system gave it (any language).
    pub name: String,
    /// `type/subtype`, checked to be a plain token pair.
    pub content_type: String,
    pub data: Vec<u8>,
}

impl Attachment {
    /// A forwarded message, attached whole (RFC 2046 §5.2.1).
    pub fn message(name: &str, raw: &[u8]) -> Attachment {
        Attachment {
            name: name.to_string(),
            content_type: "message/rfc822".into(),
            data: crlf(raw),
        }
    }
}

/// A message as the user wrote it.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub from: String,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub subject: String,
    pub text: String,
    /// Message ids without angle brackets (RFC 5322 §3.6.4).
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// Without angle brackets; see `new_message_id`.
    pub message_id: String,
    /// Unix seconds.
    pub date: i64,
}

impl Outgoing {
    /// Every envelope recipient: To, Cc and Bcc, each once.
    pub fn recipients(&self) -> Vec<String> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for mailbox in self.to.iter().chain(&self.cc).chain(&self.bcc) {
            let key = mailbox.normalized();
            if !seen.contains(&key) {
                seen.push(key);
                out.push(mailbox.address.clone());
            }
        }
        out
    }

    /// The message bytes; with the Bcc field only when `with_bcc` (drafts).
    pub fn build(&self, with_bcc: bool) -> Vec<u8> {
        let mut builder = MessageBuilder::new()
            .from(Address::new_address(None::<&str>, self.from.as_str()))
            .message_id(self.message_id.as_str())
            .date(self.date)
            .subject(self.subject.as_str());
        if !self.to.is_empty() {
            builder = builder.to(address_list(&self.to));
        }
        if !self.cc.is_empty() {
            builder = builder.cc(address_list(&self.cc));
        }
        if with_bcc && !self.bcc.is_empty() {
            builder = builder.bcc(address_list(&self.bcc));
        }
        if let Some(parent) = &self.in_reply_to {
            builder = builder.in_reply_to(parent.as_str());
        }
        if !self.references.is_empty() {
            builder = builder.references(MessageId::new_list(
                self.references.iter().map(|r| Cow::Borrowed(r.as_str())),
            ));
        }
        let text = crlf(self.text.as_bytes());
        let text = String::from_utf8_lossy(&text).into_owned();
        if self.attachments.is_empty() {
            builder = builder.text_body(text);
        } else {
            let mut parts = vec![MimePart::new("text/plain", BodyPart::Text(text.into()))];
            parts.extend(self.attachments.iter().map(attachment_part));
            builder = builder.body(MimePart::new("multipart/mixed", parts));
        }
        // Writing to a Vec cannot fail; an empty message would be refused
        // by the engine rather than sent.
        builder.write_to_vec().unwrap_or_default()
    }
}

fn address_list(list: &[Mailbox]) -> Address<'_> {
    Address::new_list(
        list.iter()
            .map(|m| Address::new_address(m.name.as_deref(), m.address.as_str()))
            .collect(),
    )
}

fn attachment_part(file: &Attachment) -> MimePart<'_> {
    if file.content_type == "message/rfc822" {
        // RFC 2046 §5.2.1: no base64 for message/rfc822; 7bit or 8bit.
        let encoding = if file.data.is_ascii() { "7bit" } else { "8bit" };
        return MimePart::new(
            "message/rfc822",
            BodyPart::Binary(file.data.as_slice().into()),
        )
        .attachment(file.name.as_str())
        .transfer_encoding(encoding);
    }
    let content_type = if is_token_pair(&file.content_type) {
        file.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    MimePart::new(content_type, BodyPart::Binary(file.data.as_slice().into()))
        .attachment(file.name.as_str())
}

/// `type/subtype` made only of RFC 2045 token characters.
fn is_token_pair(content_type: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 127
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(content_type.split_once('/'), Some((a, b)) if token(a) && token(b))
}

/// A fresh Message-ID (without brackets): time, 96 random bits, our host.
pub fn new_message_id(hostname: &str, now: i64) -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("{now:x}.{random}@{hostname}")
}

/// `bytes` with every line ending in CRLF (bare LF and bare CR become CRLF).
pub fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
#[path = "compose_tests.rs"]
mod tests;
