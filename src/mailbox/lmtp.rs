//! The mailbox role's LMTP server (RFC 2033): the door through which the
//! engine hands local mail to the message store.
//!
//! Owns: the LMTP listener and its sessions. What "delivered" means is the
//! `LocalDelivery` implementation's business (the store); this file only
//! speaks the protocol.
//!
//! Invariants:
//! - After DATA there is exactly one reply per accepted RCPT, in RCPT order
//!   (RFC 2033 §4.2), and each says what `deliver` did for that recipient.
//! - `deliver` gets the message prefixed with `Return-Path: <sender>`
//!   (RFC 5321 §4.4) and runs off the executor; a panic in it becomes a
//!   temporary failure for that recipient, never a dead server.
//! - The command parser, DATA reader, reply type and connection framing are
//!   the SMTP server's (`engine::smtp`); nothing is parsed twice.
//!
//! Reads untrusted input: yes. It is loopback plumbing from our own engine,
//! but every limit (line, size, recipients, errors, idle time) still holds.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use smol::net::TcpStream;
use smol::Executor;

use crate::engine::smtp::command::Command;
use crate::engine::smtp::connection::{ConnError, Connection, PeerStream};
use crate::engine::smtp::data::DataReader;
use crate::engine::smtp::reply::Reply;
use crate::engine::smtp::server::{accept_forever, bind};

const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_MESSAGE_BYTES: u64 = 512 * 1024 * 1024;
/// Generous: the engine already enforced its own, configurable, line limit.
const MAX_LINE_BYTES: usize = 1024 * 1024;
const MAX_RECIPIENTS: usize = 10_000;
const MAX_ERRORS: u32 = 20;

/// What the store says about a recipient at RCPT time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientCheck {
    Accept,
    Unknown,
    Disabled,
    /// The mailbox is at its quota already.
    Full,
}

/// Why `deliver` did not store a message; data, not a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// Try again later (e.g. the store is busy): 4xx.
    Temporary(String),
    /// Will never work (e.g. no such user any more): 5xx.
    Permanent(String),
    /// The mailbox has no room for this message (RFC 3463 X.2.2); `for_good`
    /// when the message is larger than the whole quota.
    MailboxFull { for_good: bool, why: String },
}

pub trait LocalDelivery: Send + Sync + 'static {
    fn check_recipient(&self, address: &str) -> RecipientCheck;
    /// Stores `message` (already prefixed with Return-Path) for one recipient; durable on Ok.
    fn deliver(&self, recipient: &str, message: &[u8]) -> Result<(), DeliveryFailure>;
    /// Stores `message` for each recipient, one result each, in order;
    /// `queue_ref` is the engine's queue id (MAIL's `XQUEUEID`), by which
    /// the store recognises a retry it has stored already. The store
    /// overrides this to commit all of them together. This default
    /// delivers one at a time, and a panic costs only its own recipient.
    fn deliver_many(
        &self,
        recipients: &[String],
        message: &[u8],
        _queue_ref: Option<&str>,
    ) -> Vec<Result<(), DeliveryFailure>> {
        recipients
            .iter()
            .map(|r| {
                catch_unwind(AssertUnwindSafe(|| self.deliver(r, message))).unwrap_or_else(|_| {
                    tracing::warn!(recipient = %r, "local delivery panicked");
                    Err(DeliveryFailure::Temporary(
                        "local error in processing".into(),
                    ))
                })
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LmtpError {
    #[error("cannot listen for LMTP on {addr}: {source} (change [mailbox] lmtp_listen in appliance.toml)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the LMTP thread: {0}")]
    Thread(std::io::Error),
}

/// Keeps the LMTP server running; `wait` blocks while it runs.
pub struct LmtpHandle {
    thread: JoinHandle<()>,
    local_addr: SocketAddr,
}

impl LmtpHandle {
    pub fn wait(self) {
        let _ = self.thread.join();
    }

    /// The bound address (useful when the configuration said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

struct Server {
    hostname: String,
    delivery: Arc<dyn LocalDelivery>,
}

/// Binds `listen` and serves LMTP on a thread of its own.
pub fn start(
    listen: SocketAddr,
    hostname: String,
    delivery: Arc<dyn LocalDelivery>,
) -> Result<LmtpHandle, LmtpError> {
    let bind_error = |source| LmtpError::Bind {
        addr: listen,
        source,
    };
    let listener = bind(listen).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let server = Arc::new(Server { hostname, delivery });
    let thread = std::thread::Builder::new()
        .name("lmtp".into())
        .spawn(move || {
            let executor = Arc::new(Executor::new());
            let serve = accept_forever(listener, "lmtp", executor.clone(), move |tcp, peer| {
                session(server.clone(), tcp, peer)
            });
            smol::block_on(executor.run(serve))
        })
        .map_err(LmtpError::Thread)?;
    tracing::info!(addr = %local_addr, "LMTP listening");
    Ok(LmtpHandle { thread, local_addr })
}

enum Phase {
    Connected,
    Greeted,
    Transaction {
        sender: String,
        recipients: Vec<String>,
        queue_ref: Option<String>,
    },
}

enum Step {
    Reply(Reply),
    Replies(Vec<Reply>),
    Close(Reply),
}

fn reply(code: u16, status: &'static str, text: impl Into<String>) -> Step {
    Step::Reply(Reply::new(code, status, text))
}

async fn session(server: Arc<Server>, tcp: TcpStream, peer: SocketAddr) {
    let mut conn = Connection::new(PeerStream::Plain(tcp), IDLE_TIMEOUT);
    let mut phase = Phase::Connected;
    let mut errors = 0u32;
    conn.queue(&Reply::bare(
        220,
        format!("{} LMTP campusmail", server.hostname),
    ));
    loop {
        let step = match conn.read_command().await {
            Ok(Ok(command)) => handle(&server, &mut phase, command, &mut conn).await,
            Ok(Err(e)) => Ok(Step::Reply(e.reply())),
            Err(e) => Err(e),
        };
        let replies = match step {
            Ok(Step::Reply(r)) => vec![r],
            Ok(Step::Replies(rs)) => rs,
            Ok(Step::Close(r)) => {
                conn.queue(&r);
                break;
            }
            Err(ConnError::Timeout | ConnError::Flood) => {
                conn.queue(&Reply::new(421, "4.4.2", "Error: timeout or overlong line"));
                break;
            }
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "LMTP session ended");
                return;
            }
        };
        for r in &replies {
            conn.queue(r);
        }
        errors += u32::from(replies.len() == 1 && replies[0].is_permanent_failure());
        if errors > MAX_ERRORS {
            conn.queue(&Reply::new(421, "4.7.0", "Error: too many errors"));
            break;
        }
    }
    conn.close().await;
}

/// One handler per verb, reached from this one match.
async fn handle(
    server: &Arc<Server>,
    phase: &mut Phase,
    command: Command,
    conn: &mut Connection,
) -> Result<Step, ConnError> {
    Ok(match command {
        Command::Lhlo(_) => {
            *phase = Phase::Greeted;
            let lines = [
                server.hostname.as_str(),
                "PIPELINING",
                "ENHANCEDSTATUSCODES",
                "8BITMIME",
                "SMTPUTF8",
                // Private (RFC 5321 §2.2.2): our engine names its queue id.
                "XQUEUEID",
            ];
            let mut lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            lines.push(format!("SIZE {MAX_MESSAGE_BYTES}"));
            Step::Reply(Reply::multiline(250, lines))
        }
        // RFC 2033 §4.1: an LMTP server must not accept HELO/EHLO.
        Command::Ehlo(_) | Command::Helo(_) => reply(
            500,
            "5.5.1",
            "Error: this is LMTP, use LHLO (RFC 2033 §4.1)",
        ),
        Command::Mail(mail) => match phase {
            Phase::Connected => reply(503, "5.5.1", "Error: send LHLO first"),
            Phase::Transaction { .. } => reply(503, "5.5.1", "Error: nested MAIL command"),
            Phase::Greeted if mail.size.is_some_and(|s| s > MAX_MESSAGE_BYTES) => reply(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ),
            Phase::Greeted => {
                *phase = Phase::Transaction {
                    sender: mail.sender,
                    recipients: Vec::new(),
                    queue_ref: mail.queue_ref,
                };
                reply(250, "2.1.0", "Ok")
            }
        },
        Command::Rcpt(rcpt) => rcpt_to(server, phase, rcpt.recipient).await,
        Command::Data => return data(server, phase, conn).await,
        Command::Rset => {
            if !matches!(phase, Phase::Connected) {
                *phase = Phase::Greeted;
            }
            reply(250, "2.0.0", "Ok")
        }
        Command::Noop => reply(250, "2.0.0", "Ok"),
        Command::Quit => Step::Close(Reply::new(221, "2.0.0", "Bye")),
        Command::Vrfy => reply(252, "2.5.0", "Cannot VRFY user"),
        Command::Help => reply(214, "2.0.0", "Commands: LHLO MAIL RCPT DATA RSET NOOP QUIT"),
        Command::StartTls | Command::Auth { .. } => {
            reply(502, "5.5.1", "Error: command not implemented over LMTP")
        }
    })
}

async fn rcpt_to(server: &Arc<Server>, phase: &mut Phase, recipient: String) -> Step {
    let Phase::Transaction { recipients, .. } = phase else {
        return reply(503, "5.5.1", "Error: need MAIL command");
    };
    if recipients.len() >= MAX_RECIPIENTS {
        return reply(452, "4.5.3", "Too many recipients");
    }
    let delivery = server.delivery.clone();
    let address = recipient.clone();
    let check = smol::unblock(move || {
        catch_unwind(AssertUnwindSafe(|| delivery.check_recipient(&address)))
    })
    .await;
    match check {
        Ok(RecipientCheck::Accept) => {
            recipients.push(recipient);
            reply(250, "2.1.5", "Ok")
        }
        Ok(RecipientCheck::Unknown) => {
            reply(550, "5.1.1", format!("<{recipient}>: no such user here"))
        }
        Ok(RecipientCheck::Disabled) => {
            reply(550, "5.2.1", format!("<{recipient}>: mailbox disabled"))
        }
        // RFC 3463 X.2.2 "mailbox full"; temporary, so the sender's queue
        // retries while the user makes room.
        Ok(RecipientCheck::Full) => reply(452, "4.2.2", format!("<{recipient}>: mailbox full")),
        Err(_) => {
            tracing::warn!(recipient = %recipient, "recipient check panicked");
            reply(451, "4.3.0", "Error: local error in processing")
        }
    }
}

async fn data(
    server: &Arc<Server>,
    phase: &mut Phase,
    conn: &mut Connection,
) -> Result<Step, ConnError> {
    let (sender, recipients, queue_ref) = match std::mem::replace(phase, Phase::Greeted) {
        Phase::Transaction {
            sender,
            recipients,
            queue_ref,
        } if !recipients.is_empty() => (sender, recipients, queue_ref),
        other => {
            let has_mail = matches!(other, Phase::Transaction { .. });
            *phase = other;
            return Ok(if has_mail {
                reply(554, "5.5.1", "Error: no valid recipients")
            } else {
                reply(503, "5.5.1", "Error: need RCPT command")
            });
        }
    };
    conn.queue(&Reply::bare(354, "End data with <CR><LF>.<CR><LF>"));
    let mut reader = DataReader::new(MAX_MESSAGE_BYTES, MAX_LINE_BYTES);
    conn.read_data(&mut reader).await?;
    let body = match reader.finish() {
        Ok(body) => body,
        Err(defect) => {
            let refusal = defect.reply(MAX_MESSAGE_BYTES, MAX_LINE_BYTES);
            return Ok(Step::Replies(vec![refusal; recipients.len()]));
        }
    };
    // RFC 5321 §4.4: the final delivery adds Return-Path with the reverse path.
    let mut message = format!("Return-Path: <{sender}>\r\n").into_bytes();
    message.extend_from_slice(&body);
    let message = Arc::new(message);
    let (delivery, shared, rcpts) = (server.delivery.clone(), message.clone(), recipients.clone());
    // All recipients in one batch (one store commit). A panic in the batch
    // defers every recipient (451): nothing of it was committed.
    let results = smol::unblock(move || {
        catch_unwind(AssertUnwindSafe(|| {
            delivery.deliver_many(&rcpts, &shared, queue_ref.as_deref())
        }))
    })
    .await;
    let results: Vec<Option<Result<(), DeliveryFailure>>> = match results {
        Ok(r) if r.len() == recipients.len() => r.into_iter().map(Some).collect(),
        _ => vec![None; recipients.len()],
    };
    let mut replies = Vec::with_capacity(recipients.len());
    for (recipient, result) in recipients.into_iter().zip(results) {
        replies.push(match result {
            Some(Ok(())) => Reply::new(250, "2.0.0", format!("<{recipient}> delivered")),
            Some(Err(DeliveryFailure::Temporary(why))) => {
                tracing::warn!(recipient = %recipient, reason = %why, "local delivery deferred");
                Reply::new(451, "4.3.0", format!("<{recipient}> {why}"))
            }
            Some(Err(DeliveryFailure::Permanent(why))) => {
                tracing::warn!(recipient = %recipient, reason = %why, "local delivery failed");
                Reply::new(550, "5.0.0", format!("<{recipient}> {why}"))
            }
            // RFC 5321 §4.2.2 552 "exceeded storage allocation" for a
            // message that can never fit; 452 (RFC 3463 4.2.2) for a full
            // mailbox that may have room later.
            Some(Err(DeliveryFailure::MailboxFull { for_good, why })) => {
                tracing::warn!(recipient = %recipient, reason = %why, "mailbox over quota");
                if for_good {
                    Reply::new(552, "5.2.2", format!("<{recipient}> {why}"))
                } else {
                    Reply::new(452, "4.2.2", format!("<{recipient}> {why}"))
                }
            }
            None => {
                tracing::warn!(recipient = %recipient, "local delivery panicked");
                Reply::new(
                    451,
                    "4.3.0",
                    format!("<{recipient}> local error in processing"),
                )
            }
        });
    }
    Ok(Step::Replies(replies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{FakeStore, RawClient};

    #[test]
    fn lmtp_session_replies_once_per_recipient() {
        let store = Arc::new(FakeStore::default());
        let handle = start(
            "127.0.0.1:0".parse().unwrap(),
            "mbox.test".into(),
            store.clone(),
        )
        .unwrap();
        let mut c = RawClient::connect(handle.local_addr());
        assert_eq!(c.reply().0, 220);
        assert_eq!(c.command("EHLO engine.test").0, 500);
        let (code, lines) = c.command("LHLO engine.test");
        assert_eq!(code, 250);
        assert!(lines.iter().any(|l| l == "PIPELINING"), "{lines:?}");
        assert_eq!(c.command("MAIL FROM:<s@x.test> BODY=8BITMIME").0, 250);
        assert_eq!(c.command("RCPT TO:<a@campus.test>").0, 250);
        assert_eq!(c.command("RCPT TO:<ghost@campus.test>").0, 550);
        assert_eq!(
            c.command("RCPT TO:<old@campus.test>").1[0],
            "5.2.1 <old@campus.test>: mailbox disabled"
        );
        assert_eq!(c.command("RCPT TO:<full@campus.test>").0, 250);
        assert_eq!(c.command("RCPT TO:<boom@campus.test>").0, 250);
        assert_eq!(c.command("RCPT TO:<b@campus.test>").0, 250);
        assert_eq!(c.command("DATA").0, 354);
        c.send_raw(b"Subject: hi\r\n\r\n..dot\r\n.\r\n");
        let codes: Vec<u16> = (0..4).map(|_| c.reply().0).collect();
        assert_eq!(codes, [250, 451, 451, 250]);
        assert_eq!(c.command("QUIT").0, 221);

        let stored = store.stored.lock().unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].0, "a@campus.test");
        assert_eq!(stored[1].0, "b@campus.test");
        assert_eq!(
            stored[0].1,
            b"Return-Path: <s@x.test>\r\nSubject: hi\r\n\r\n.dot\r\n"
        );
    }

    #[test]
    fn lmtp_refuses_smuggled_data_for_every_recipient() {
        let store = Arc::new(FakeStore::default());
        let handle = start(
            "127.0.0.1:0".parse().unwrap(),
            "mbox.test".into(),
            store.clone(),
        )
        .unwrap();
        let mut c = RawClient::connect(handle.local_addr());
        c.reply();
        c.command("LHLO engine.test");
        c.command("MAIL FROM:<>");
        c.command("RCPT TO:<a@campus.test>");
        c.command("RCPT TO:<b@campus.test>");
        assert_eq!(c.command("DATA").0, 354);
        c.send_raw(b"x\n.\nMAIL FROM:<evil@x.test>\r\n.\r\n");
        assert_eq!((c.reply().0, c.reply().0), (550, 550));
        assert_eq!(c.command("NOOP").0, 250, "the session is still in step");
        assert!(store.stored.lock().unwrap().is_empty());
    }
}
