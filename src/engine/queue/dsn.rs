//! Delivery status notifications (RFC 3464): the bounce ("failed") and delay
//! ("delayed") messages the queue sends from the null sender `<>` to a
//! message's envelope sender.
//!
//! `build` turns a `DsnRequest` into a whole message (header section and
//! body, CRLF line ends): a `multipart/report; report-type=delivery-status`
//! (RFC 6522) with three parts:
//! 1. `text/plain; charset=utf-8`, Korean first and English second, one
//!    paragraph per recipient with the reason in plain words;
//! 2. `message/delivery-status` (RFC 3464 §2.2 per-message and §2.3
//!    per-recipient fields), written `7bit` so any MTA or tool can read it;
//! 3. `text/rfc822-headers` (RFC 6522 §4): the original header section only.
//!
//! The MIME is made with mail-builder 1.0 (the version mail-auth uses): its
//! `MimePart` takes the `report-type` parameter, chooses base64 or
//! quoted-printable for the UTF-8 text part on its own, RFC 2047-encodes the
//! subject, and writes a part with an explicit `Content-Transfer-Encoding`
//! verbatim, which is what the delivery-status part needs (its fields must
//! stay readable, never base64).
//!
//! Owns nothing on disk or in memory: bytes in, bytes out.
//!
//! Invariants:
//! - The output is 7-bit ASCII with CRLF line ends. The one exception is an
//!   envelope sender whose own address is non-ASCII (SMTPUTF8): it appears
//!   as is in `To:`, since mail to it travels over SMTPUTF8 anyway.
//! - The original body is never included: the third part holds only the
//!   lines of the original header section, up to `MAX_ORIGINAL_HEADER_BYTES`.
//! - No text from a remote server, a recipient address or the original
//!   message can start a header line or a delivery-status field: every such
//!   value is flattened to one line (`one_line`) before it is written.
//! - A DSN is never addressed to the null sender (`DsnError::NullSender`):
//!   a bounce is never bounced (RFC 5321 §4.5.5).
//! - Never panics, whatever the input.
//!
//! Reads untrusted input: yes. Diagnostic texts are remote servers' replies,
//! addresses came from SMTP clients, and the original message is whatever a
//! client sent.

use chrono::{DateTime, FixedOffset};
use mail_builder::headers::{content_type::ContentType, date::Date, raw::Raw};
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

/// Whether the DSN reports a final failure or a delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnKind {
    /// Delivery to these recipients has failed for good (`Action: failed`).
    Failed,
    /// Delivery is still being retried (`Action: delayed`) until
    /// `retry_until` (unix seconds): the message's queue lifetime ends then.
    Delayed { retry_until: i64 },
}

/// One recipient the DSN reports on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsnRecipient {
    pub address: String,
    /// An RFC 3463 status code, e.g. "5.1.1" or "4.4.1".
    pub status: String,
    /// The remote server's reply ("550 5.1.1 no such user") or our own text.
    pub diagnostic: String,
    /// The host that gave the reply, when there was one.
    pub remote_mta: Option<String>,
}

/// Everything `build` needs to know about one DSN.
#[derive(Clone, Debug)]
pub struct DsnRequest<'a> {
    /// Our host name (the `Reporting-MTA`).
    pub reporting_mta: &'a str,
    /// The envelope sender the DSN goes to; never empty.
    pub original_sender: &'a str,
    pub queue_id: &'a str,
    /// When the original message was accepted, unix seconds.
    pub arrival_date: i64,
    pub kind: DsnKind,
    pub recipients: &'a [DsnRecipient],
    /// The original message; only its header section is attached.
    pub original_message: &'a [u8],
    /// Now, unix seconds (the `Date:`).
    pub now: i64,
}

/// Why no DSN can be built. The caller logs it; the queue entry stays as is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DsnError {
    #[error("the original sender is the null sender <>: a bounce is never bounced")]
    NullSender,
    #[error("the original sender {0:?} is not a usable address")]
    InvalidSender(String),
    #[error("the reporting MTA name {0:?} is not a host name")]
    InvalidReportingMta(String),
    #[error("a DSN needs at least one recipient")]
    NoRecipients,
}

/// The most of the original header section that is attached.
pub const MAX_ORIGINAL_HEADER_BYTES: usize = 64 * 1024;
/// Diagnostic texts are cut to this many bytes, so that even one unbroken
/// word stays within the 998-byte line limit (RFC 5322 §2.1.1).
const MAX_DIAGNOSTIC_BYTES: usize = 900;
/// Addresses and host names are cut to this many bytes.
const MAX_NAME_BYTES: usize = 320;
/// Times are clamped to 1970..=9999 so dates always format.
const MAX_TIME: i64 = 253_402_300_799;

/// The full message (headers + body, CRLF line ends) to be sent from the
/// null sender `<>` to `req.original_sender`.
pub fn build(req: &DsnRequest) -> Result<Vec<u8>, DsnError> {
    let sender = envelope_sender(req.original_sender)?;
    let host = reporting_mta(req.reporting_mta)?;
    if req.recipients.is_empty() {
        return Err(DsnError::NoRecipients);
    }
    let recipients: Vec<Clean> = req
        .recipients
        .iter()
        .map(|r| Clean::new(r, req.kind))
        .collect();
    let queue_id = token(req.queue_id);

    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", human_text(req, host, &queue_id, &recipients))
                .language("ko, en"),
            MimePart::new(
                "message/delivery-status",
                BodyPart::Binary(delivery_status(req, host, &queue_id, &recipients).into()),
            )
            .transfer_encoding("7bit"),
            MimePart::new(
                "text/rfc822-headers",
                BodyPart::Binary(original_header_section(req.original_message).into()),
            ),
        ],
    );
    let (subject_ko, subject_en) = match req.kind {
        DsnKind::Failed => ("메일 전달 실패", "Undelivered Mail Returned to Sender"),
        DsnKind::Delayed { .. } => ("메일 전달 지연", "Delayed Mail (still being retried)"),
    };
    let message_id = format!(
        "dsn.{}.{}.{:08x}@{host}",
        if queue_id.is_empty() { "0" } else { &queue_id },
        clamp_time(req.now),
        rand::random::<u32>()
    );
    let mut out = Vec::new();
    MessageBuilder::new()
        .from((
            "Mail Delivery System".to_string(),
            format!("MAILER-DAEMON@{host}"),
        ))
        .to(sender.to_string())
        .subject(format!("{subject_ko} / {subject_en}"))
        .date(Date::new(clamp_time(req.now)))
        .message_id(message_id)
        // RFC 3834 §5: a machine-generated reply; autoresponders stay quiet.
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .serialize(&mut out);
    Ok(out)
}

/// The envelope sender without angle brackets; refuses `<>` and anything
/// that cannot be written as one address in `To:`.
fn envelope_sender(raw: &str) -> Result<&str, DsnError> {
    let s = raw.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s);
    if s.is_empty() {
        return Err(DsnError::NullSender);
    }
    let usable = s.len() <= MAX_NAME_BYTES
        && s.contains('@')
        && !s
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ','));
    if usable {
        Ok(s)
    } else {
        Err(DsnError::InvalidSender(raw.chars().take(80).collect()))
    }
}

fn reporting_mta(raw: &str) -> Result<&str, DsnError> {
    let ok = !raw.is_empty()
        && raw.len() <= 255
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(raw)
    } else {
        Err(DsnError::InvalidReportingMta(
            raw.chars().take(80).collect(),
        ))
    }
}

/// A recipient with every field made safe to write.
struct Clean {
    /// One line, may hold UTF-8 (for the text part).
    address: String,
    status: String,
    /// One line, may hold UTF-8 (for the text part); empty if none given.
    diagnostic: String,
    /// One line, ASCII only; empty if unknown.
    remote_mta: String,
}

impl Clean {
    fn new(r: &DsnRecipient, kind: DsnKind) -> Clean {
        // The class must match the action (RFC 3464 §2.3.4, RFC 3463 §3.1):
        // a delay is a transient 4.x.x; a failure is 5.x.x, or 4.x.x when a
        // transient problem outlived the queue lifetime.
        let (default, allowed) = match kind {
            DsnKind::Failed => ('5', ['4', '5']),
            DsnKind::Delayed { .. } => ('4', ['4', '4']),
        };
        let status = r.status.trim();
        let status = match status.split_once('.') {
            Some((class, rest)) if is_status_code(status) => {
                let class = class.chars().next().filter(|c| allowed.contains(c));
                format!("{}.{rest}", class.unwrap_or(default))
            }
            _ => format!("{default}.0.0"),
        };
        Clean {
            address: one_line(&r.address, MAX_NAME_BYTES),
            status,
            diagnostic: one_line(&r.diagnostic, MAX_DIAGNOSTIC_BYTES),
            remote_mta: ascii_only(&one_line(
                r.remote_mta.as_deref().unwrap_or(""),
                MAX_NAME_BYTES,
            )),
        }
    }
}

/// RFC 3463 §2: class "." subject "." detail, class 2, 4 or 5.
fn is_status_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    let number = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && number(parts[1], 3)
        && number(parts[2], 3)
}

/// Flattens untrusted text to one line: control characters (CR and LF
/// among them) become spaces, runs of white space collapse, and the result
/// is cut to `max` bytes on a character boundary.
fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for word in s
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let extra = usize::from(!out.is_empty());
        if out.len() + extra >= max {
            break;
        }
        if extra == 1 {
            out.push(' ');
        }
        for c in word.chars() {
            if out.len() + c.len_utf8() > max {
                break;
            }
            out.push(c);
        }
    }
    out
}

fn ascii_only(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// A queue id reduced to characters safe in a Message-ID and a field.
fn token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect()
}

fn clamp_time(t: i64) -> i64 {
    t.clamp(0, MAX_TIME)
}

fn rfc5322_date(t: i64) -> String {
    Date::new(clamp_time(t)).to_rfc822()
}

/// Korea Standard Time: UTC+9 all year (no daylight saving).
fn kst(t: i64) -> Option<DateTime<FixedOffset>> {
    let offset = FixedOffset::east_opt(9 * 3600)?;
    DateTime::from_timestamp(clamp_time(t), 0).map(|d| d.with_timezone(&offset))
}

fn korean_time(t: i64) -> String {
    kst(t)
        .map(|d| d.format("%Y년 %-m월 %-d일 %H:%M (한국 시간)").to_string())
        .unwrap_or_default()
}

fn english_time(t: i64) -> String {
    match (kst(t), DateTime::from_timestamp(clamp_time(t), 0)) {
        (Some(k), Some(u)) => format!(
            "{} KST ({} UTC)",
            k.format("%-d %b %Y %H:%M"),
            u.format("%-d %b %H:%M")
        ),
        _ => String::new(),
    }
}

/// The reason in plain words, Korean and English, from the status code
/// (RFC 3463 §3 subjects and details).
fn plain_reason(status: &str) -> (&'static str, &'static str) {
    let temporary = status.starts_with('4');
    let rest = status.split_once('.').map(|(_, r)| r).unwrap_or("");
    match rest {
        "1.1" | "1.0" | "1.3" | "1.6" => (
            "받는 사람 주소가 존재하지 않습니다.",
            "the recipient's address does not exist.",
        ),
        "1.2" => (
            "받는 사람의 도메인(메일 서버)을 찾을 수 없습니다.",
            "the recipient's domain (mail server) could not be found.",
        ),
        "2.1" => (
            "받는 사람의 메일함이 사용 중지되어 있습니다.",
            "the recipient's mailbox is disabled.",
        ),
        "2.2" => (
            "받는 사람의 메일함이 가득 찼습니다.",
            "the recipient's mailbox is full.",
        ),
        "2.3" | "3.4" => (
            "메일이 너무 커서 받는 쪽에서 받지 않았습니다.",
            "the message is too large for the receiving side.",
        ),
        "4.7" => (
            "정해진 기간 안에 전달하지 못해 전달을 포기했습니다.",
            "it could not be delivered within the allowed time, so we gave up.",
        ),
        r if r.starts_with("4.") => (
            "받는 쪽 메일 서버에 연결할 수 없거나 서버가 응답하지 않습니다.",
            "the receiving mail server could not be reached or did not answer.",
        ),
        r if r.starts_with("7.") => (
            "받는 쪽 서버가 보안 또는 정책상의 이유로 메일을 거부했습니다.",
            "the receiving server refused the message for security or policy reasons.",
        ),
        _ if temporary => (
            "받는 쪽에 일시적인 문제가 있습니다.",
            "there is a temporary problem on the receiving side.",
        ),
        _ => (
            "받는 쪽 서버가 메일을 거부했습니다.",
            "the receiving server refused the message.",
        ),
    }
}

/// Part 1: what happened, for people. Korean first, English second.
fn human_text(req: &DsnRequest, host: &str, queue_id: &str, recipients: &[Clean]) -> String {
    let mut t = String::new();
    let arrived_ko = korean_time(req.arrival_date);
    let arrived_en = english_time(req.arrival_date);
    match req.kind {
        DsnKind::Failed => {
            t.push_str("메일을 전달하지 못했습니다.\n\n");
            t.push_str(&format!(
                "{arrived_ko}에 보내신 메일을 아래 받는 사람에게 전달하지 못했습니다.\n\n"
            ));
        }
        DsnKind::Delayed { .. } => {
            t.push_str("메일 전달이 늦어지고 있습니다.\n\n");
            t.push_str(&format!(
                "{arrived_ko}에 보내신 메일을 아래 받는 사람에게 아직 전달하지 못했습니다.\n\n"
            ));
        }
    }
    for r in recipients {
        let (ko, _) = plain_reason(&r.status);
        t.push_str(&format!("  받는 사람: {}\n  이유: {ko}\n", r.address));
        if !r.diagnostic.is_empty() {
            t.push_str(&format!("  서버 응답: {}\n", r.diagnostic));
        }
        t.push('\n');
    }
    if let DsnKind::Delayed { retry_until } = req.kind {
        t.push_str(&format!(
            "{}까지 계속 전달을 시도합니다. 지금은 아무것도 하실 필요가 없습니다.\n\
             그때까지도 전달하지 못하면 다시 알려 드립니다.\n\n",
            korean_time(retry_until)
        ));
    }
    t.push_str("원래 메일의 헤더를 첨부했습니다. 본문은 첨부하지 않았습니다.\n");
    t.push_str(&format!(
        "이 메일은 {host}의 메일 시스템이 자동으로 보냈습니다. (대기열 ID: {queue_id})\n"
    ));

    t.push_str("\n------------------------------------------------------------\n\n");

    match req.kind {
        DsnKind::Failed => {
            t.push_str("Your message could not be delivered.\n\n");
            t.push_str(&format!(
                "The message you sent on {arrived_en} could not be delivered to the \
                 recipients below.\n\n"
            ));
        }
        DsnKind::Delayed { .. } => {
            t.push_str("Your message has not been delivered yet.\n\n");
            t.push_str(&format!(
                "The message you sent on {arrived_en} has not yet been delivered to the \
                 recipients below.\n\n"
            ));
        }
    }
    for r in recipients {
        let (_, en) = plain_reason(&r.status);
        t.push_str(&format!("  Recipient: {}\n  Reason: {en}\n", r.address));
        if !r.diagnostic.is_empty() {
            t.push_str(&format!("  Server reply: {}\n", r.diagnostic));
        }
        t.push('\n');
    }
    if let DsnKind::Delayed { retry_until } = req.kind {
        t.push_str(&format!(
            "We will keep trying until {}. No action is needed yet.\n\
             If it still cannot be delivered by then, you will get another message.\n\n",
            english_time(retry_until)
        ));
    }
    t.push_str("The header of your original message is attached; its body is not.\n");
    t.push_str(&format!(
        "This is an automatic message from the mail system at {host} (queue ID {queue_id}).\n"
    ));
    t.replace('\n', "\r\n")
}

/// Part 2: the machine-readable report, RFC 3464 §2.2 and §2.3.
fn delivery_status(req: &DsnRequest, host: &str, queue_id: &str, recipients: &[Clean]) -> Vec<u8> {
    let mut out = String::new();
    field(&mut out, "Reporting-MTA", &format!("dns; {host}"));
    if !queue_id.is_empty() {
        // An extension field (RFC 3464 §2.2.5 allows X- fields).
        field(&mut out, "X-Campusmail-Queue-ID", queue_id);
    }
    field(&mut out, "Arrival-Date", &rfc5322_date(req.arrival_date));
    for r in recipients {
        out.push_str("\r\n");
        field(&mut out, "Final-Recipient", &final_recipient(&r.address));
        let action = match req.kind {
            DsnKind::Failed => "failed",
            DsnKind::Delayed { .. } => "delayed",
        };
        field(&mut out, "Action", action);
        field(&mut out, "Status", &r.status);
        if !r.remote_mta.is_empty() {
            field(&mut out, "Remote-MTA", &format!("dns; {}", r.remote_mta));
        }
        if !r.diagnostic.is_empty() {
            field(&mut out, "Diagnostic-Code", &diagnostic_code(&r.diagnostic));
        }
        if let DsnKind::Delayed { retry_until } = req.kind {
            field(&mut out, "Will-Retry-Until", &rfc5322_date(retry_until));
        }
    }
    out.into_bytes()
}

/// `rfc822; addr` for ASCII addresses; for SMTPUTF8 ones the `utf-8`
/// address type in its 7-bit xtext form (RFC 6533 §3).
fn final_recipient(address: &str) -> String {
    if address.is_ascii() {
        return format!("rfc822; {address}");
    }
    let mut s = String::from("utf-8; ");
    for c in address.chars() {
        match c {
            '!'..='*' | ','..='<' | '>'..='[' | ']'..='~' => s.push(c),
            _ => s.push_str(&format!("\\x{{{:X}}}", c as u32)),
        }
    }
    s
}

/// `smtp; <reply>` when the text is an SMTP reply (RFC 3464 §2.3.6), else
/// our own diagnostic type for texts we wrote ourselves.
fn diagnostic_code(diagnostic: &str) -> String {
    let b = diagnostic.as_bytes();
    let is_reply = b.len() >= 3
        && matches!(b[0], b'2' | b'4' | b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && matches!(b.get(3), None | Some(b' ' | b'-'));
    let kind = if is_reply { "smtp" } else { "X-Campusmail" };
    format!("{kind}; {}", ascii_only(diagnostic))
}

/// Appends `Name: value` CRLF, folding at spaces before 78 columns
/// (RFC 5322 §2.2.3; delivery-status fields use header syntax, RFC 3464
/// §2.1.2). `value` is already one line.
fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    let mut column = name.len() + 1;
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if column + 1 + word.len() > 78 && column > name.len() + 1 {
            out.push_str("\r\n");
            column = 0;
        }
        out.push(' ');
        out.push_str(word);
        column += 1 + word.len();
    }
    out.push_str("\r\n");
}

/// Part 3: the original header section (RFC 5322 §2.1), CRLF line ends. It
/// ends at the first empty line, at the first line that is neither a field
/// nor a continuation (a message without a blank line, junk), or at
/// `MAX_ORIGINAL_HEADER_BYTES`; so the body is never included.
fn original_header_section(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(&first) = line.first() else { break };
        let continuation = matches!(first, b' ' | b'\t') && !out.is_empty();
        if !(continuation || is_field_start(line)) {
            break;
        }
        if out.len() + line.len() + 2 > MAX_ORIGINAL_HEADER_BYTES {
            break;
        }
        out.extend(line.iter().filter(|&&b| b != b'\r' && b != 0));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `field-name ":"`, field-name being printable ASCII but ':' (RFC 5322 §3.6.8).
fn is_field_start(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(i) if i > 0 => line[..i].iter().all(|b| (33..=126).contains(b)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
