//! One SMTP session: the state machine and the verbs that need no more than
//! a line (EHLO/HELO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, HELP, STARTTLS).
//! AUTH is in `auth.rs`, DATA in `accept.rs`.
//!
//! Owns: the state of one connection (greeting, TLS, login, transaction,
//! error count).
//!
//! Invariants:
//! - Every command goes through `dispatch`, one `match` with one handler per
//!   verb; each handler returns the reply, which `send` writes out and counts.
//! - After STARTTLS the session starts over: no greeting, no transaction, no
//!   login carried across the TLS boundary (RFC 3207 §4.2).
//! - A session with more than `max_errors` 5xx replies, or silent for
//!   `idle_timeout_secs`, is closed with 421.
//!
//! Reads untrusted input: yes, parsed commands from the peer.

use std::net::SocketAddr;
use std::sync::Arc;

use super::command::{Command, CommandError, MailFrom, RcptTo};
use super::connection::{ConnError, Connection};
use super::reply::Reply;
use super::{Port, SmtpContext};
use crate::directory::address::normalize_address;
use crate::directory::snapshot::RecipientRoute;

/// The peer's HELO/EHLO.
#[derive(Debug, Clone)]
pub(super) struct Helo {
    /// The name it gave, as given (cleaned when written into headers).
    pub(super) name: String,
    /// EHLO (ESMTP) rather than HELO.
    pub(super) extended: bool,
}

/// An open mail transaction (RFC 5321 §3.3).
#[derive(Debug, Clone)]
pub(super) struct Transaction {
    pub(super) sender: String,
    pub(super) body_8bit: bool,
    pub(super) smtputf8: bool,
    pub(super) recipients: Vec<String>,
}

pub(super) enum Phase {
    /// No HELO/EHLO yet (also right after STARTTLS).
    Connected,
    /// Greeted; no transaction open.
    Greeted(Helo),
    /// MAIL accepted; collecting recipients until DATA.
    Transaction(Helo, Transaction),
}

/// What the session does after a command.
pub(super) enum Step {
    Reply(Reply),
    /// The handler already queued its replies.
    Replied,
    /// Send this reply and end the session.
    Close(Reply),
}

pub(crate) struct Session {
    pub(super) ctx: Arc<SmtpContext>,
    pub(super) port: Port,
    pub(super) peer: SocketAddr,
    pub(super) phase: Phase,
    pub(super) tls: bool,
    /// The authenticated address (AUTH), if any.
    pub(super) login: Option<String>,
    /// The login is the webmail's service identity acting for `login`.
    pub(super) via_service: bool,
    errors: u32,
}

fn reply(code: u16, status: &'static str, text: impl Into<String>) -> Step {
    Step::Reply(Reply::new(code, status, text))
}

impl Session {
    pub(crate) fn new(ctx: Arc<SmtpContext>, port: Port, peer: SocketAddr, tls: bool) -> Session {
        Session {
            ctx,
            port,
            peer,
            phase: Phase::Connected,
            tls,
            login: None,
            via_service: false,
            errors: 0,
        }
    }

    pub(super) fn hostname(&self) -> &str {
        &self.ctx.config.node.hostname
    }

    pub(crate) async fn run(mut self, mut conn: Connection) {
        conn.queue(&Reply::bare(
            220,
            format!("{} ESMTP campusmail", self.hostname()),
        ));
        loop {
            let step = match conn.read_command().await {
                Ok(Ok(command)) => self.dispatch(command, &mut conn).await,
                Ok(Err(e)) => Ok(Step::Reply(e.reply())),
                Err(e) => Err(e),
            };
            let step = match step {
                Ok(step) => step,
                Err(ConnError::Timeout) => Step::Close(Reply::new(
                    421,
                    "4.4.2",
                    format!(
                        "{} Error: timeout exceeded, closing connection",
                        self.hostname()
                    ),
                )),
                Err(ConnError::Flood) => Step::Close(Reply::new(
                    500,
                    "5.5.2",
                    "Line too long; closing connection",
                )),
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "SMTP session ended");
                    return;
                }
            };
            match step {
                Step::Reply(r) => {
                    if !self.send(&mut conn, &r) {
                        break;
                    }
                }
                Step::Replied => {}
                Step::Close(r) => {
                    conn.queue(&r);
                    break;
                }
            }
        }
        conn.close().await;
    }

    /// Queues `reply`; false when the session must end for too many errors.
    fn send(&mut self, conn: &mut Connection, reply: &Reply) -> bool {
        conn.queue(reply);
        if reply.is_permanent_failure() {
            self.errors += 1;
            if self.errors > self.ctx.config.engine.max_errors {
                tracing::warn!(peer = %self.peer, errors = self.errors, "closing an SMTP session with too many errors");
                conn.queue(&Reply::new(
                    421,
                    "4.7.0",
                    format!("{} Error: too many errors", self.hostname()),
                ));
                return false;
            }
        }
        true
    }

    async fn dispatch(
        &mut self,
        command: Command,
        conn: &mut Connection,
    ) -> Result<Step, ConnError> {
        Ok(match command {
            Command::Ehlo(name) => self.ehlo(name, true),
            Command::Helo(name) => self.ehlo(name, false),
            Command::Mail(mail) => self.mail(mail),
            Command::Rcpt(rcpt) => self.rcpt(rcpt),
            Command::Data => return self.data(conn).await,
            Command::Rset => self.rset(),
            Command::Noop => reply(250, "2.0.0", "Ok"),
            Command::Quit => Step::Close(Reply::new(221, "2.0.0", "Bye")),
            // RFC 5321 §3.5.3: 252 when we will not verify.
            Command::Vrfy => reply(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::Help => reply(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY STARTTLS AUTH",
            ),
            Command::StartTls => return self.starttls(conn).await,
            Command::Auth { mechanism, initial } => {
                return self.auth(&mechanism, initial, conn).await
            }
            Command::Lhlo(_) => Step::Reply(CommandError::Unknown.reply()),
        })
    }

    /// EHLO/HELO (RFC 5321 §4.1.1.1); also resets any transaction.
    fn ehlo(&mut self, name: String, extended: bool) -> Step {
        self.phase = Phase::Greeted(Helo { name, extended });
        let host = self.hostname().to_string();
        if !extended {
            return Step::Reply(Reply::bare(250, host));
        }
        let mut lines = vec![
            host,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.ctx.config.engine.max_message_bytes),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if !self.tls {
            lines.push("STARTTLS".to_string());
        }
        // RFC 8314 §3 / RFC 4954 §4: offer AUTH only where a password is safe.
        if self.port.is_submission() && self.tls && self.login.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        Step::Reply(Reply::multiline(250, lines))
    }

    fn mail(&mut self, mail: MailFrom) -> Step {
        let helo = match &self.phase {
            Phase::Connected => return reply(503, "5.5.1", "Error: send HELO/EHLO first"),
            Phase::Transaction(..) => return reply(503, "5.5.1", "Error: nested MAIL command"),
            Phase::Greeted(helo) => helo.clone(),
        };
        if self.port.is_submission() && self.login.is_none() {
            return reply(530, "5.7.0", "Authentication required");
        }
        // Only our LMTP server takes the engine's queue id.
        if mail.queue_ref.is_some() {
            return reply(555, "5.5.4", "Unsupported parameter XQUEUEID");
        }
        let max = self.ctx.config.engine.max_message_bytes;
        if mail.size.is_some_and(|size| size > max) {
            return reply(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({max} octets)"),
            );
        }
        if !mail.sender.is_empty() && normalize_address(&mail.sender).is_none() {
            return reply(501, "5.1.7", "Bad sender address syntax");
        }
        // RFC 6531 §3.4: a non-ASCII address needs SMTPUTF8.
        if !mail.smtputf8 && !mail.sender.is_ascii() {
            return reply(553, "5.6.7", "Non-ASCII sender address requires SMTPUTF8");
        }
        // RFC 6409 §6.1: a submitting user may send only as themselves or
        // as an alias that delivers to them (R7: no forged campus senders).
        // RFC 3834 §3.3: the mailbox role's auto-replies go out from the
        // null reverse path, so that nothing ever answers them; only the
        // service identity may use it on the submission port.
        let service_null_sender = self.via_service && mail.sender.is_empty();
        if let Some(login) = self.login.as_ref().filter(|_| !service_null_sender) {
            if !self
                .ctx
                .directory
                .current()
                .may_send_as(login, &mail.sender)
            {
                return reply(
                    553,
                    "5.7.1",
                    format!(
                        "Sender address <{}> is not yours; send as {login} or one of your aliases",
                        mail.sender
                    ),
                );
            }
        }
        let transaction = Transaction {
            sender: mail.sender,
            body_8bit: mail.body_8bit,
            smtputf8: mail.smtputf8,
            recipients: Vec::new(),
        };
        self.phase = Phase::Transaction(helo, transaction);
        reply(250, "2.1.0", "Ok")
    }

    fn rcpt(&mut self, rcpt: RcptTo) -> Step {
        let address = rcpt.recipient;
        let route = self.ctx.directory.current().route(&address);
        let authenticated = self.login.is_some();
        let max = self.ctx.config.engine.max_recipients;
        let Phase::Transaction(_, tx) = &mut self.phase else {
            return reply(503, "5.5.1", "Error: need MAIL command");
        };
        if tx.recipients.len() >= max {
            return reply(452, "4.5.3", "Too many recipients");
        }
        if !tx.smtputf8 && !address.is_ascii() {
            return reply(
                553,
                "5.6.7",
                "Non-ASCII recipient address requires SMTPUTF8",
            );
        }
        let accepted = match route {
            // Local addresses are kept normalized; remote ones as given,
            // since their local part may be case-sensitive (RFC 5321 §2.4).
            RecipientRoute::Local => normalize_address(&address).unwrap_or(address),
            RecipientRoute::Remote if authenticated => address,
            RecipientRoute::Remote => {
                return reply(554, "5.7.1", format!("<{address}>: Relay access denied"))
            }
            RecipientRoute::UnknownLocal => {
                return reply(550, "5.1.1", format!("<{address}>: no such user here"))
            }
            RecipientRoute::Disabled => {
                return reply(550, "5.2.1", format!("<{address}>: mailbox disabled"))
            }
            // TODO(rfc5321 §4.5.1): accept the domainless <Postmaster>.
            RecipientRoute::Invalid => return reply(501, "5.1.3", "Bad recipient address syntax"),
        };
        if !tx.recipients.contains(&accepted) {
            tx.recipients.push(accepted);
        }
        reply(250, "2.1.5", "Ok")
    }

    fn rset(&mut self) -> Step {
        if let Phase::Transaction(helo, _) = &self.phase {
            self.phase = Phase::Greeted(helo.clone());
        }
        reply(250, "2.0.0", "Ok")
    }

    /// STARTTLS (RFC 3207).
    async fn starttls(&mut self, conn: &mut Connection) -> Result<Step, ConnError> {
        if self.tls {
            return Ok(reply(503, "5.5.1", "Error: TLS already active"));
        }
        if conn.has_buffered_input() {
            // RFC 3207 §5: bytes pipelined after STARTTLS must not be taken
            // as sent over TLS (CVE-2011-0411); refuse and close.
            tracing::warn!(peer = %self.peer, "closing: client pipelined commands after STARTTLS");
            return Ok(Step::Close(Reply::new(
                554,
                "5.5.1",
                "Error: command pipelining after STARTTLS is not allowed",
            )));
        }
        conn.queue(&Reply::new(220, "2.0.0", "Ready to start TLS"));
        let acceptor = self.ctx.tls.clone();
        conn.start_tls(&acceptor).await?;
        self.tls = true;
        self.phase = Phase::Connected;
        self.login = None;
        self.via_service = false;
        Ok(Step::Replied)
    }
}
