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

use super::wire::{dot_stuff, ReplyAssembler, ServerReply, MAX_REPLY_LINE};
use super::DeliveryOutcome;
use crate::engine::smtp::connection::{with_timeout, ConnError, Connection, Line, PeerStream};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// RFC 5321 §4.5.3.2.6 suggests 10 minutes for the reply after the final dot.
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// One message for some of its recipients.
pub struct LmtpTransaction<'a> {
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub body_8bit: bool,
    pub smtputf8: bool,
    pub message: &'a [u8],
    /// Our queue id, named to a server that offers `XQUEUEID` so it can
    /// tell a retry it has stored already (`store::queue_refs`).
    pub queue_id: &'a str,
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

fn outcome(reply: &ServerReply) -> DeliveryOutcome {
    match reply.code {
        200..=299 => DeliveryOutcome::Delivered,
        500..=599 => DeliveryOutcome::Failed(reply.to_string()),
        _ => DeliveryOutcome::Deferred(reply.to_string()),
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
    let names_queue_id = reply
        .lines
        .iter()
        .any(|l| l.eq_ignore_ascii_case("XQUEUEID"));
    expect_positive(reply)?;

    let mut mail = format!("MAIL FROM:<{}>", tx.sender);
    if names_queue_id && !tx.queue_id.is_empty() {
        mail.push_str(&format!(" XQUEUEID={}", tx.queue_id));
    }
    if tx.body_8bit {
        mail.push_str(" BODY=8BITMIME");
    }
    if tx.smtputf8 {
        mail.push_str(" SMTPUTF8");
    }
    let reply = command(&mut conn, &mail).await?;
    if reply.code / 100 != 2 {
        outcomes.fill(Some(outcome(&reply)));
        return quit(&mut conn).await;
    }
    let mut accepted = Vec::new();
    for (i, recipient) in tx.recipients.iter().enumerate() {
        let reply = command(&mut conn, &format!("RCPT TO:<{recipient}>")).await?;
        if reply.code / 100 == 2 {
            accepted.push(i);
        } else {
            outcomes[i] = Some(outcome(&reply));
        }
    }
    if accepted.is_empty() {
        return quit(&mut conn).await;
    }
    let reply = command(&mut conn, "DATA").await?;
    if reply.code != 354 {
        for &i in &accepted {
            outcomes[i] = Some(outcome(&reply));
        }
        return quit(&mut conn).await;
    }
    conn.queue_bytes(&dot_stuff(tx.message));
    conn.queue_bytes(b".\r\n");
    // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
    for &i in &accepted {
        outcomes[i] = Some(outcome(&read_reply(&mut conn).await?));
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
        Err(LmtpClientError::Refused(reply.to_string()))
    }
}

/// Reads a possibly multi-line reply (RFC 5321 §4.2.1).
async fn read_reply(conn: &mut Connection) -> Result<ServerReply, LmtpClientError> {
    let mut assembler = ReplyAssembler::default();
    loop {
        let Line::Complete(line) = conn.read_line(MAX_REPLY_LINE).await? else {
            return Err(LmtpClientError::MalformedReply);
        };
        if let Some(reply) = assembler
            .feed(&line)
            .map_err(|_| LmtpClientError::MalformedReply)?
        {
            return Ok(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_reply_classes() {
        let reply = |code| ServerReply {
            code,
            lines: vec!["x".into()],
        };
        assert_eq!(outcome(&reply(250)), DeliveryOutcome::Delivered);
        assert_eq!(
            outcome(&reply(451)),
            DeliveryOutcome::Deferred("451 x".into())
        );
        assert_eq!(
            outcome(&reply(550)),
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
            queue_id: "",
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
