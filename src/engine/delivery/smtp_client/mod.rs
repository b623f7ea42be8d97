//! The SMTP client: one session to one remote mail server, able to carry
//! several transactions (RFC 5321 §3, with PIPELINING RFC 2920, STARTTLS
//! RFC 3207, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531).
//!
//! Owns: one `ClientConnection` to the server and what its EHLO said.
//! `types` holds the policy, limits and outcome types; `transaction` the
//! MAIL/RCPT/DATA exchange.
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

mod transaction;
mod types;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::connection::{ClientConnection, LinkError};
use super::tls_client;
use super::wire::ServerReply;
use types::TLS_HANDSHAKE_FAILED;
pub use types::{ClientTimeouts, Extensions, RecipientOutcome, SessionFailure, TlsPolicy};

/// How long to wait for the reply to QUIT before just closing.
const QUIT_WAIT: Duration = Duration::from_secs(10);

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
                "{TLS_HANDSHAKE_FAILED}{}: {e}",
                self.peer
            )));
        }
        // RFC 3207 §4.2: forget what the server said before TLS; ask again.
        self.extensions = Extensions::default();
        self.hello(our_hostname).await
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
