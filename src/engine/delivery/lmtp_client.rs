//! The LMTP client: hands one queued message to the mailbox role's LMTP
//! server for its local recipients (RFC 2033).
//!
//! Owns: one short-lived TCP connection per attempt to `engine.lmtp_target`.
//!
//! Invariants:
//! - Every recipient given gets exactly one outcome. A recipient whose
//!   per-recipient DATA reply arrived keeps it even if the connection drops
//!   afterwards; every other recipient is deferred when anything goes wrong
//!   at the connection level (refused, timeout, garbled reply).
//! - The message is sent dot-stuffed and ends in CRLF (RFC 5321 §4.5.2).
//!
//! Reads untrusted input: replies of the LMTP server (bounded line length and
//! number of lines).

use std::net::SocketAddr;
use std::time::Duration;

use smol::net::TcpStream;

use super::DeliveryOutcome;
use crate::engine::smtp::connection::{with_timeout, ConnError, Connection, Line, PeerStream};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// RFC 5321 §4.5.3.2.6 suggests 10 minutes for the reply after the final dot.
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 100;

/// One message for some of its recipients.
pub struct LmtpTransaction<'a> {
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub body_8bit: bool,
    pub smtputf8: bool,
    pub message: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
enum LmtpClientError {
    #[error("cannot connect to the mailbox role's LMTP server at {target}: {source}")]
    Connect {
        target: SocketAddr,
        source: ConnError,
    },
    #[error("LMTP connection lost: {0}")]
    Connection(#[from] ConnError),
    #[error("LMTP server sent a malformed reply")]
    MalformedReply,
    #[error("LMTP server refused the session: {0}")]
    Refused(String),
}

/// A reply as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerReply {
    code: u16,
    text: String,
}

impl ServerReply {
    fn outcome(&self) -> DeliveryOutcome {
        let text = format!("{} {}", self.code, self.text);
        match self.code {
            200..=299 => DeliveryOutcome::Delivered,
            500..=599 => DeliveryOutcome::Failed(text),
            _ => DeliveryOutcome::Deferred(text),
        }
    }
}

/// Delivers `tx`; the result has one outcome per recipient, in order.
pub async fn deliver(
    target: SocketAddr,
    hostname: &str,
    tx: &LmtpTransaction<'_>,
) -> Vec<DeliveryOutcome> {
    let mut outcomes: Vec<Option<DeliveryOutcome>> = vec![None; tx.recipients.len()];
    if let Err(e) = session(target, hostname, tx, &mut outcomes).await {
        tracing::warn!(error = %e, "LMTP delivery attempt failed; recipients stay queued");
        for slot in outcomes.iter_mut().filter(|o| o.is_none()) {
            *slot = Some(DeliveryOutcome::Deferred(e.to_string()));
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| DeliveryOutcome::Deferred("no reply from the LMTP server".into()))
        })
        .collect()
}

async fn session(
    target: SocketAddr,
    hostname: &str,
    tx: &LmtpTransaction<'_>,
    outcomes: &mut [Option<DeliveryOutcome>],
) -> Result<(), LmtpClientError> {
    let tcp = with_timeout(CONNECT_TIMEOUT, async {
        Ok(TcpStream::connect(target).await?)
    })
    .await
    .map_err(|source| LmtpClientError::Connect { target, source })?;
    let mut conn = Connection::new(PeerStream::Plain(tcp), REPLY_TIMEOUT);
    expect_positive(read_reply(&mut conn).await?)?;
    let reply = command(&mut conn, &format!("LHLO {hostname}")).await?;
    expect_positive(reply)?;

    let mut mail = format!("MAIL FROM:<{}>", tx.sender);
    if tx.body_8bit {
        mail.push_str(" BODY=8BITMIME");
    }
    if tx.smtputf8 {
        mail.push_str(" SMTPUTF8");
    }
    let reply = command(&mut conn, &mail).await?;
    if reply.code / 100 != 2 {
        outcomes.fill(Some(reply.outcome()));
        return quit(&mut conn).await;
    }
    let mut accepted = Vec::new();
    for (i, recipient) in tx.recipients.iter().enumerate() {
        let reply = command(&mut conn, &format!("RCPT TO:<{recipient}>")).await?;
        if reply.code / 100 == 2 {
            accepted.push(i);
        } else {
            outcomes[i] = Some(reply.outcome());
        }
    }
    if accepted.is_empty() {
        return quit(&mut conn).await;
    }
    let reply = command(&mut conn, "DATA").await?;
    if reply.code != 354 {
        for &i in &accepted {
            outcomes[i] = Some(reply.outcome());
        }
        return quit(&mut conn).await;
    }
    conn.queue_bytes(&dot_stuff(tx.message));
    conn.queue_bytes(b".\r\n");
    // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
    for &i in &accepted {
        outcomes[i] = Some(read_reply(&mut conn).await?.outcome());
    }
    quit(&mut conn).await
}

async fn command(conn: &mut Connection, line: &str) -> Result<ServerReply, LmtpClientError> {
    conn.queue_bytes(line.as_bytes());
    conn.queue_bytes(b"\r\n");
    read_reply(conn).await
}

async fn quit(conn: &mut Connection) -> Result<(), LmtpClientError> {
    conn.queue_bytes(b"QUIT\r\n");
    conn.close().await;
    Ok(())
}

fn expect_positive(reply: ServerReply) -> Result<(), LmtpClientError> {
    if reply.code / 100 == 2 {
        Ok(())
    } else {
        Err(LmtpClientError::Refused(format!(
            "{} {}",
            reply.code, reply.text
        )))
    }
}

/// Reads a possibly multi-line reply (RFC 5321 §4.2.1).
async fn read_reply(conn: &mut Connection) -> Result<ServerReply, LmtpClientError> {
    let mut text = Vec::new();
    for _ in 0..MAX_REPLY_LINES {
        let Line::Complete(line) = conn.read_line(MAX_REPLY_LINE).await? else {
            return Err(LmtpClientError::MalformedReply);
        };
        let (code, last, line_text) =
            parse_reply_line(&line).ok_or(LmtpClientError::MalformedReply)?;
        text.push(line_text);
        if last {
            return Ok(ServerReply {
                code,
                text: text.join(" "),
            });
        }
    }
    Err(LmtpClientError::MalformedReply)
}

/// `ddd text`, `ddd-text` or `ddd` → (code, is last line, text).
fn parse_reply_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let last = match line.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return None,
    };
    let text = String::from_utf8_lossy(line.get(4..).unwrap_or(b"")).into_owned();
    Some((code, last, text))
}

/// Doubles a leading dot on every line and makes sure the message ends in
/// CRLF (RFC 5321 §4.5.2).
fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 2);
    let mut line_start = true;
    for (i, &b) in message.iter().enumerate() {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n' && i > 0 && message[i - 1] == b'\r';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffs_dots_and_ends_with_crlf() {
        assert_eq!(dot_stuff(b".a\r\nb.\r\n..c\r\n"), b"..a\r\nb.\r\n...c\r\n");
        assert_eq!(dot_stuff(b"no end"), b"no end\r\n");
        assert_eq!(dot_stuff(b""), b"");
    }

    #[test]
    fn parses_reply_lines() {
        assert_eq!(
            parse_reply_line(b"250-mx.test\r\n"),
            Some((250, false, "mx.test".into()))
        );
        assert_eq!(
            parse_reply_line(b"452 4.2.2 full\r\n"),
            Some((452, true, "4.2.2 full".into()))
        );
        assert_eq!(
            parse_reply_line(b"220\r\n"),
            Some((220, true, String::new()))
        );
        for bad in [
            &b"25\r\n"[..],
            b"abc x\r\n",
            b"250x\r\n",
            b"999 x\r\n",
            b"250 no line end",
        ] {
            assert_eq!(parse_reply_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn outcomes_follow_reply_classes() {
        let reply = |code| ServerReply {
            code,
            text: "x".into(),
        };
        assert_eq!(reply(250).outcome(), DeliveryOutcome::Delivered);
        assert_eq!(
            reply(451).outcome(),
            DeliveryOutcome::Deferred("451 x".into())
        );
        assert_eq!(
            reply(550).outcome(),
            DeliveryOutcome::Failed("550 x".into())
        );
    }

    #[test]
    fn refused_connection_defers_every_recipient() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let recipients = vec!["a@campus.test".to_string(), "b@campus.test".to_string()];
        let tx = LmtpTransaction {
            sender: "s@x.test",
            recipients: &recipients,
            body_8bit: false,
            smtputf8: false,
            message: b"hi\r\n",
        };
        let outcomes = smol::block_on(deliver(port, "mx.test", &tx));
        assert_eq!(outcomes.len(), 2);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, DeliveryOutcome::Deferred(_))),
            "{outcomes:?}"
        );
    }
}
