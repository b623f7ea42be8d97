//! The SMTP client: one session to one remote mail server, able to carry
//! several transactions (RFC 5321 §3, with PIPELINING RFC 2920, STARTTLS
//! RFC 3207, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531).
//!
//! Owns: one `ClientConnection` to the server and what its EHLO said.
//!
//! Invariants:
//! - `send` gives one outcome per recipient, in order, or one
//!   `SessionFailure` that applies to them all.
//! - Nothing is sent that the server cannot take as it is: too big for its
//!   SIZE, 8-bit without 8BITMIME, UTF-8 envelope or headers without
//!   SMTPUTF8 all fail before MAIL FROM (no downgrade).
//! - After `send` returns, the session is either ready for another
//!   transaction (`is_usable`) or known broken; a half-done transaction is
//!   always reset (RSET, RFC 5321 §4.1.1.5).
//! - Every reply's text ends up in the outcome strings, as
//!   `host mx.example[192.0.2.1] said: 550 5.1.1 ... (in reply to RCPT TO)`,
//!   so bounces can quote the remote server.
//! - No command line carries CR or LF from an address (no injection).
//!
//! Reads untrusted input: yes, the remote server's replies (bounded and
//! parsed by `wire`; junk is a temporary failure, never a panic).

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::connection::{ClientConnection, LinkError};
use super::tls_client;
use super::wire::{dot_stuff, ServerReply};

/// RCPT commands sent in one pipelined group: a few KB, which fits any
/// socket buffer, so neither side blocks writing while the other does too
/// (RFC 2920 §3.1 warns about that deadlock).
const PIPELINE_GROUP: usize = 50;
/// How long to wait for the reply to QUIT before just closing.
const QUIT_WAIT: Duration = Duration::from_secs(10);

/// Whether to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// STARTTLS if offered, plain text if not. A failed handshake fails this
    /// connection temporarily; the caller may retry later with `Disabled`
    /// (as Postfix does) so a server with broken TLS still gets its mail.
    Opportunistic,
    /// STARTTLS or no delivery (temporary failure when not offered).
    Required,
    Disabled,
}

/// Limits for each wait on the server. Defaults follow RFC 5321 §4.5.3.2
/// (connecting is bounded separately, at 30 s like Postfix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    pub connect: Duration,
    /// §4.5.3.2.1 initial 220: 5 minutes.
    pub greeting: Duration,
    /// §4.5.3.2.2/3 MAIL, RCPT (and EHLO, STARTTLS, RSET): 5 minutes.
    pub command: Duration,
    /// §4.5.3.2.4 the 354 to DATA: 2 minutes.
    pub data_init: Duration,
    /// §4.5.3.2.5 each block of message data written: 3 minutes.
    pub data_block: Duration,
    /// §4.5.3.2.6 the reply after the final dot: 10 minutes.
    pub data_end: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        ClientTimeouts {
            connect: Duration::from_secs(30),
            greeting: minutes(5),
            command: minutes(5),
            data_init: minutes(2),
            data_block: minutes(3),
            data_end: minutes(10),
        }
    }
}

impl ClientTimeouts {
    /// The same limit for every wait (tests use a short one).
    pub fn uniform(limit: Duration) -> Self {
        ClientTimeouts {
            connect: limit,
            greeting: limit,
            command: limit,
            data_init: limit,
            data_block: limit,
            data_end: limit,
        }
    }
}

/// What the server's EHLO reply offers (RFC 5321 §4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub pipelining: bool,
    /// SIZE offered, with its limit; `Some(0)` means no fixed limit
    /// (RFC 1870 §4).
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub starttls: bool,
    pub enhanced_status_codes: bool,
}

impl Extensions {
    /// The lines after the first name one extension each: keyword, params.
    fn from_ehlo(reply: &ServerReply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                _ => {}
            }
        }
        ext
    }

    /// The server's fixed size limit, if it has one.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

/// What became of one recipient; the text quotes the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    Delivered(String),
    Temporary(String),
    Permanent(String),
}

/// A failure that applies to every recipient of the attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionFailure {
    #[error("{0}")]
    Temporary(String),
    #[error("{0}")]
    Permanent(String),
}

/// One open, greeted session to one server.
pub struct SmtpClient {
    conn: ClientConnection,
    extensions: Extensions,
    peer: String,
    timeouts: ClientTimeouts,
    /// Set when the connection can no longer carry a transaction.
    broken: bool,
}

impl SmtpClient {
    /// Connects to `addr`, reads the greeting, says EHLO (HELO if EHLO is
    /// refused), does STARTTLS per `tls` (SNI is `server_name` when it is a
    /// DNS name) and EHLO again over TLS.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        our_hostname: &str,
        tls: TlsPolicy,
        timeouts: ClientTimeouts,
    ) -> Result<SmtpClient, SessionFailure> {
        let peer = format!("{server_name}[{}]", addr.ip());
        let conn = ClientConnection::connect(addr, timeouts.connect)
            .await
            .map_err(|e| SessionFailure::Temporary(format!("cannot connect to {peer}: {e}")))?;
        let mut client = SmtpClient {
            conn,
            extensions: Extensions::default(),
            peer,
            timeouts,
            broken: false,
        };
        let greeting = client.reply(timeouts.greeting, "the greeting").await?;
        if !greeting.is_positive() {
            // RFC 5321 §3.1: after a 554 greeting the client sends QUIT.
            let failure = client.refusal(&greeting, "the greeting");
            client.quit().await;
            return Err(failure);
        }
        client.hello(our_hostname).await?;
        match (tls, client.extensions.starttls) {
            (TlsPolicy::Disabled, _) => {}
            (TlsPolicy::Required, false) => {
                let failure = SessionFailure::Temporary(format!(
                    "TLS is required but {} does not offer STARTTLS",
                    client.peer
                ));
                client.quit().await;
                return Err(failure);
            }
            (TlsPolicy::Opportunistic, false) => {}
            (_, true) => {
                client
                    .start_tls(server_name, addr, tls, our_hostname)
                    .await?
            }
        }
        Ok(client)
    }

    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// `mx.example[192.0.2.1]`, for logs.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// False once the connection cannot carry another transaction.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// EHLO, or HELO when EHLO is refused with 5xx (RFC 5321 §4.1.4).
    async fn hello(&mut self, our_hostname: &str) -> Result<(), SessionFailure> {
        let ehlo = self
            .command(&format!("EHLO {our_hostname}"), "EHLO")
            .await?;
        if ehlo.is_positive() {
            self.extensions = Extensions::from_ehlo(&ehlo);
            return Ok(());
        }
        if !ehlo.is_permanent() {
            return Err(self.refusal(&ehlo, "EHLO"));
        }
        let helo = self
            .command(&format!("HELO {our_hostname}"), "HELO")
            .await?;
        if !helo.is_positive() {
            return Err(self.refusal(&helo, "HELO"));
        }
        self.extensions = Extensions::default();
        Ok(())
    }

    async fn start_tls(
        &mut self,
        server_name: &str,
        addr: SocketAddr,
        tls: TlsPolicy,
        our_hostname: &str,
    ) -> Result<(), SessionFailure> {
        let reply = self.command("STARTTLS", "STARTTLS").await?;
        if reply.code != 220 {
            if tls == TlsPolicy::Required {
                return Err(SessionFailure::Temporary(format!(
                    "TLS is required but {}",
                    self.said(&reply, "STARTTLS")
                )));
            }
            tracing::info!(peer = %self.peer, %reply, "STARTTLS refused; continuing without TLS");
            return Ok(());
        }
        let name = ServerName::try_from(server_name.to_string())
            .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
        let limit = self.timeouts.command;
        if let Err(e) = self
            .conn
            .start_tls(tls_client::opportunistic_config(), name, limit)
            .await
        {
            self.broken = true;
            return Err(SessionFailure::Temporary(format!(
                "TLS with {} failed: {e}",
                self.peer
            )));
        }
        // RFC 3207 §4.2: forget what the server said before TLS; ask again.
        self.extensions = Extensions::default();
        self.hello(our_hostname).await
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA; one outcome
    /// per recipient in order. `smtputf8` says the message needs SMTPUTF8
    /// (non-ASCII addresses or header fields).
    pub async fn send(
        &mut self,
        mail_from: &str,
        recipients: &[String],
        message: &[u8],
        smtputf8: bool,
    ) -> Result<Vec<RecipientOutcome>, SessionFailure> {
        if self.broken {
            return Err(SessionFailure::Temporary(format!(
                "the connection to {} is no longer usable",
                self.peer
            )));
        }
        let mail = self.mail_command(mail_from, recipients, message, smtputf8)?;
        let result = self.transaction(&mail, recipients, message).await;
        if result.is_err() {
            self.broken = true;
        }
        result?
    }

    /// Checks what the server can take and builds MAIL FROM.
    fn mail_command(
        &self,
        mail_from: &str,
        recipients: &[String],
        message: &[u8],
        smtputf8: bool,
    ) -> Result<String, SessionFailure> {
        let ext = &self.extensions;
        if !is_clean_address(mail_from) {
            return Err(SessionFailure::Permanent(
                "5.1.7 the sender address cannot be sent over SMTP".into(),
            ));
        }
        let size = message.len() as u64;
        if let Some(limit) = ext.size_limit().filter(|&limit| size > limit) {
            return Err(SessionFailure::Permanent(format!(
                "5.3.4 the message ({size} octets) is larger than {} accepts ({limit} octets)",
                self.peer
            )));
        }
        let utf8 = smtputf8 || !mail_from.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        if utf8 && !ext.smtputf8 {
            // RFC 6531 §3.2: no SMTPUTF8 at the server, no delivery.
            return Err(SessionFailure::Permanent(format!(
                "5.6.7 the message needs SMTPUTF8 (internationalized addresses or headers) and {} does not support it",
                self.peer
            )));
        }
        let eight_bit = message.iter().any(|&b| b >= 0x80);
        if eight_bit && !ext.eight_bit_mime {
            // TODO(rfc6152 §3): downgrade to 7bit (quoted-printable/base64)
            // instead of bouncing.
            return Err(SessionFailure::Permanent(format!(
                "5.6.3 conversion required: the message has 8-bit content and {} does not support 8BITMIME",
                self.peer
            )));
        }
        let mut mail = format!("MAIL FROM:<{mail_from}>");
        if ext.size.is_some() {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        Ok(mail)
    }

    /// The commands and replies of one transaction. The outer `Err` is a
    /// lost connection (the session is then broken); the inner result is
    /// what the server decided.
    async fn transaction(
        &mut self,
        mail: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Result<Vec<RecipientOutcome>, SessionFailure>, SessionFailure> {
        let mut outcomes: Vec<Option<RecipientOutcome>> = vec![None; recipients.len()];
        let mut steps = vec![Step::Mail];
        for (i, rcpt) in recipients.iter().enumerate() {
            if is_clean_address(rcpt) {
                steps.push(Step::Rcpt(i));
            } else {
                outcomes[i] = Some(RecipientOutcome::Permanent(
                    "5.1.3 the recipient address cannot be sent over SMTP".into(),
                ));
            }
        }
        if steps.len() == 1 {
            // No recipient can be sent: nothing to do at the server.
            return Ok(Ok(finish(outcomes)));
        }
        steps.push(Step::Data);
        let group = if self.extensions.pipelining {
            PIPELINE_GROUP
        } else {
            1
        };
        let mut mail_reply = None;
        let mut data_reply = None;
        let mut accepted = Vec::new();
        let mut next = 0;
        while next < steps.len() {
            // Without pipelining, stop as soon as the rest is pointless.
            let mail_failed = mail_reply
                .as_ref()
                .is_some_and(|r: &ServerReply| !r.is_positive());
            if mail_failed || (steps[next] == Step::Data && accepted.is_empty()) {
                break;
            }
            let end = (next + group).min(steps.len());
            for step in &steps[next..end] {
                self.conn.queue_line(&match *step {
                    Step::Mail => mail.to_string(),
                    Step::Rcpt(i) => format!("RCPT TO:<{}>", recipients[i]),
                    Step::Data => "DATA".to_string(),
                });
            }
            for step in &steps[next..end] {
                match *step {
                    Step::Mail => {
                        mail_reply = Some(self.reply(self.timeouts.command, "MAIL FROM").await?)
                    }
                    Step::Rcpt(i) => {
                        let reply = self.reply(self.timeouts.command, "RCPT TO").await?;
                        if reply.is_positive() {
                            accepted.push(i);
                        } else {
                            outcomes[i] = Some(self.rejected(&reply, "RCPT TO"));
                        }
                    }
                    Step::Data => {
                        data_reply = Some(self.reply(self.timeouts.data_init, "DATA").await?)
                    }
                }
            }
            next = end;
        }
        let mail_failure = match &mail_reply {
            Some(reply) if !reply.is_positive() => Some(self.refusal(reply, "MAIL FROM")),
            _ => None,
        };
        let data_started = data_reply.as_ref().is_some_and(|r| r.code == 354);
        if let Some(failure) = mail_failure {
            self.abandon(data_started).await?;
            return Ok(Err(failure));
        }
        if accepted.is_empty() || !data_started {
            if let Some(reply) = data_reply.as_ref().filter(|_| !accepted.is_empty()) {
                let outcome = self.rejected(reply, "DATA");
                for &i in &accepted {
                    outcomes[i] = Some(outcome.clone());
                }
            }
            self.abandon(data_started).await?;
            return Ok(Ok(finish(outcomes)));
        }
        // RFC 5321 §4.5.2: dot-stuffed, CRLF at the end, then CRLF.CRLF.
        let mut data = dot_stuff(message);
        data.extend_from_slice(b".\r\n");
        let sent = self.conn.send_data(&data, self.timeouts.data_block).await;
        sent.map_err(|e| self.lost(e, "sending the message"))?;
        let reply = self.reply(self.timeouts.data_end, "end of DATA").await?;
        let outcome = match reply.code / 100 {
            2 => RecipientOutcome::Delivered(self.said(&reply, "end of DATA")),
            _ => self.rejected(&reply, "end of DATA"),
        };
        for &i in &accepted {
            outcomes[i] = Some(outcome.clone());
        }
        Ok(Ok(finish(outcomes)))
    }

    /// Ends a transaction that will not deliver: an empty message if the
    /// server already said 354 (RFC 2920 §3.1), then RSET.
    async fn abandon(&mut self, data_started: bool) -> Result<(), SessionFailure> {
        if data_started {
            self.conn.queue_line(".");
            // Whatever it says, nothing was meant to be delivered.
            let _ = self.reply(self.timeouts.data_end, "end of DATA").await?;
        }
        let reply = self.command("RSET", "RSET").await?;
        if !reply.is_positive() {
            self.broken = true;
        }
        Ok(())
    }

    /// Says QUIT and closes.
    pub async fn quit(mut self) {
        if !self.broken {
            self.conn.queue_line("QUIT");
            let _ = self
                .conn
                .read_reply(QUIT_WAIT.min(self.timeouts.command))
                .await;
        }
        self.conn.close(QUIT_WAIT.min(self.timeouts.command)).await;
    }

    async fn command(&mut self, line: &str, what: &str) -> Result<ServerReply, SessionFailure> {
        self.conn.queue_line(line);
        self.reply(self.timeouts.command, what).await
    }

    async fn reply(&mut self, limit: Duration, what: &str) -> Result<ServerReply, SessionFailure> {
        match self.conn.read_reply(limit).await {
            Ok(reply) => Ok(reply),
            Err(e) => Err(self.lost(e, what)),
        }
    }

    fn lost(&mut self, e: LinkError, what: &str) -> SessionFailure {
        self.broken = true;
        SessionFailure::Temporary(format!(
            "lost connection with {} while waiting for {what}: {e}",
            self.peer
        ))
    }

    fn said(&self, reply: &ServerReply, what: &str) -> String {
        format!("host {} said: {reply} (in reply to {what})", self.peer)
    }

    fn refusal(&self, reply: &ServerReply, what: &str) -> SessionFailure {
        if reply.is_permanent() {
            SessionFailure::Permanent(self.said(reply, what))
        } else {
            SessionFailure::Temporary(self.said(reply, what))
        }
    }

    fn rejected(&self, reply: &ServerReply, what: &str) -> RecipientOutcome {
        if reply.is_permanent() {
            RecipientOutcome::Permanent(self.said(reply, what))
        } else {
            RecipientOutcome::Temporary(self.said(reply, what))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Mail,
    Rcpt(usize),
    Data,
}

fn finish(outcomes: Vec<Option<RecipientOutcome>>) -> Vec<RecipientOutcome> {
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| RecipientOutcome::Temporary("no reply for this recipient".into()))
        })
        .collect()
}

/// An address we can put between angle brackets on a command line.
fn is_clean_address(address: &str) -> bool {
    !address
        .bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == b'<' || b == b'>' || b == 0)
}
