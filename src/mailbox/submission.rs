//! The mailbox role's SMTP submission client: how mail a user writes in the
//! webmail reaches the engine, "like any client" (RFC 6409): EHLO,
//! STARTTLS (RFC 3207), AUTH PLAIN (RFC 4954, RFC 4616) as the service
//! identity with the user as authorization identity, MAIL, RCPT, DATA.
//!
//! Owns: one short blocking connection per message, from a web worker
//! thread; nothing persists between messages.
//!
//! Invariants:
//! - Nothing but the TLS handshake is sent before TLS: the secret travels
//!   only inside a session whose certificate is exactly ours
//!   (`tls::pinned`); a server without STARTTLS is an error, never a
//!   reason to go on in plain text.
//! - Every read and write is bounded by `STEP_TIMEOUT`, and the whole
//!   submission by `TOTAL_TIMEOUT`: a worker thread is never held forever.
//! - All or nothing: if any recipient is refused the transaction is reset
//!   (RSET) before DATA and nothing is sent to anyone, so the user can fix
//!   the list and send once.
//! - No command carries CR or LF from an address (they are refused first).
//!
//! Reads untrusted input: the engine's replies (bounded and parsed by
//! `engine::delivery::wire`).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rustls::pki_types::ServerName;

use crate::auth::service::{ServiceSecret, SERVICE_IDENTITY};
use crate::config::Config;
use crate::engine::delivery::wire::{dot_stuff, ReplyAssembler, ServerReply, MAX_REPLY_LINE};

/// Longest wait for one reply or one write.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a whole submission may take.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(180);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One message to submit.
pub struct Submission<'a> {
    /// The logged-in user (the SASL authorization identity).
    pub user: &'a str,
    /// The envelope sender (RFC 5321 MAIL FROM); empty for the null
    /// reverse path of auto-replies (RFC 3834 §3.3).
    pub sender: &'a str,
    pub recipients: &'a [String],
    /// The message exactly as it should be sent (CRLF line ends).
    pub message: &'a [u8],
}

/// Which step the engine refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Auth,
    Sender,
    Data,
}

/// Why a message was not submitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Nothing reached the engine or it said "try later" (4xx): the user
    /// may simply send again.
    #[error("the mail engine could not take the message now: {0}")]
    Unavailable(String),
    /// The engine refused a step permanently (5xx).
    #[error("the mail engine refused at {step:?}: {reply}")]
    Refused {
        step: Step,
        code: u16,
        reply: String,
    },
    /// The engine refused these recipients (address, its reply); nothing
    /// was sent.
    #[error("the mail engine refused {} recipient(s)", .0.len())]
    Recipients(Vec<(String, String)>),
}

/// Where and how to reach the engine's submission port.
pub struct Submitter {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    hostname: String,
    secret: ServiceSecret,
}

impl Submitter {
    /// Reads the secret and our certificate for one submission (both are
    /// small files; reading them per message follows a replaced one).
    pub fn from_config(config: &Config) -> Result<Submitter, SubmitError> {
        let secret = crate::auth::service::load(&config.submission_secret())
            .map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        let tls = crate::tls::pinned::client_config(&config.tls.cert)
            .map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        Ok(Submitter {
            addr: reachable(config.engine.submission_listen),
            tls,
            hostname: config.node.hostname.clone(),
            secret,
        })
    }

    /// Submits one message; `Ok` once the engine said 250 after DATA, i.e.
    /// the message is durable in its queue.
    pub fn submit(&self, submission: &Submission<'_>) -> Result<(), SubmitError> {
        let unsafe_text = |s: &str| s.contains(['\r', '\n', '<', '>']) || s.is_empty();
        if unsafe_text(submission.user)
            || (!submission.sender.is_empty() && unsafe_text(submission.sender))
            || submission.recipients.iter().any(|r| unsafe_text(r))
        {
            return Err(SubmitError::Refused {
                step: Step::Sender,
                code: 501,
                reply: "an address holds characters SMTP cannot carry".into(),
            });
        }
        let deadline = Instant::now() + TOTAL_TIMEOUT;
        let tcp = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT).map_err(|e| {
            SubmitError::Unavailable(format!("cannot connect to {}: {e}", self.addr))
        })?;
        let mut wire = Wire::new(Stream::Plain(tcp), deadline);
        let result = self.converse(&mut wire, submission);
        if !matches!(result, Err(SubmitError::Unavailable(_))) {
            // Best effort: the outcome is known either way.
            let _ = wire.command("QUIT");
        }
        result
    }

    fn converse(&self, wire: &mut Wire, s: &Submission<'_>) -> Result<(), SubmitError> {
        expect(wire.reply()?, 220, Step::Auth)?;
        let ehlo = format!("EHLO {}", self.hostname);
        let features = expect(wire.command(&ehlo)?, 250, Step::Auth)?;
        if !offers(&features, "STARTTLS") {
            return Err(SubmitError::Unavailable(
                "the submission port does not offer STARTTLS".into(),
            ));
        }
        expect(wire.command("STARTTLS")?, 220, Step::Auth)?;
        wire.start_tls(Arc::clone(&self.tls), self.addr.ip())?;
        let features = expect(wire.command(&ehlo)?, 250, Step::Auth)?;
        // RFC 4616 §2: authzid NUL authcid NUL passwd.
        let plain = format!("{}\0{SERVICE_IDENTITY}\0{}", s.user, self.secret.expose());
        let auth = format!("AUTH PLAIN {}", BASE64.encode(plain));
        expect(wire.command(&auth)?, 235, Step::Auth)?;

        let mut mail = format!("MAIL FROM:<{}>", s.sender);
        if offers(&features, "SIZE") {
            mail.push_str(&format!(" SIZE={}", s.message.len()));
        }
        if !s.message.is_ascii() {
            // RFC 6152: an 8-bit body (a forwarded message/rfc822 part).
            mail.push_str(" BODY=8BITMIME");
        }
        expect(wire.command(&mail)?, 250, Step::Sender)?;
        let mut refused = Vec::new();
        for rcpt in s.recipients {
            let reply = wire.command(&format!("RCPT TO:<{rcpt}>"))?;
            match reply.code / 100 {
                2 => {}
                5 => refused.push((rcpt.clone(), reply.to_string())),
                _ => return Err(SubmitError::Unavailable(reply.to_string())),
            }
        }
        if !refused.is_empty() {
            let _ = wire.command("RSET");
            return Err(SubmitError::Recipients(refused));
        }
        expect(wire.command("DATA")?, 354, Step::Data)?;
        let mut data = dot_stuff(s.message);
        data.extend_from_slice(b".\r\n");
        wire.send(&data)?;
        expect(wire.reply()?, 250, Step::Data)?;
        Ok(())
    }
}

/// The address to connect to: a wildcard listen address means this host.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// True when an EHLO reply lists `keyword` (RFC 5321 §4.1.1.1).
fn offers(features: &ServerReply, keyword: &str) -> bool {
    features.lines.iter().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
    })
}

/// `reply` when its code is `want`; else the error for `step`.
fn expect(reply: ServerReply, want: u16, step: Step) -> Result<ServerReply, SubmitError> {
    if reply.code == want {
        Ok(reply)
    } else if reply.is_permanent() {
        Err(SubmitError::Refused {
            step,
            code: reply.code,
            reply: reply.to_string(),
        })
    } else {
        Err(SubmitError::Unavailable(reply.to_string()))
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Closed,
}

impl Stream {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(tcp) => Some(tcp),
            Stream::Tls(tls) => Some(tls.get_ref()),
            Stream::Closed => None,
        }
    }
}

/// The connection with its read buffer and deadline.
struct Wire {
    stream: Stream,
    input: Vec<u8>,
    deadline: Instant,
}

fn arm(tcp: &TcpStream, deadline: Instant) -> Result<(), SubmitError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(SubmitError::Unavailable(
            "the mail engine took too long".into(),
        ));
    }
    let limit = Some(left.min(STEP_TIMEOUT));
    tcp.set_read_timeout(limit).map_err(lost)?;
    tcp.set_write_timeout(limit).map_err(lost)
}

fn lost(e: impl std::fmt::Display) -> SubmitError {
    SubmitError::Unavailable(format!("connection to the mail engine failed: {e}"))
}

impl Wire {
    fn new(stream: Stream, deadline: Instant) -> Wire {
        Wire {
            stream,
            input: Vec::new(),
            deadline,
        }
    }

    /// Sets the socket timeouts for the next step: `STEP_TIMEOUT`, or what
    /// is left of the whole submission if that is less.
    fn arm(&self) -> Result<(), SubmitError> {
        let tcp = self.stream.tcp().ok_or_else(|| lost("closed"))?;
        arm(tcp, self.deadline)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), SubmitError> {
        self.arm()?;
        let written = match &mut self.stream {
            Stream::Plain(tcp) => tcp.write_all(bytes).and_then(|()| tcp.flush()),
            Stream::Tls(tls) => tls.write_all(bytes).and_then(|()| tls.flush()),
            Stream::Closed => return Err(lost("closed")),
        };
        written.map_err(lost)
    }

    fn command(&mut self, line: &str) -> Result<ServerReply, SubmitError> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Reads one complete (possibly multi-line) reply.
    fn reply(&mut self) -> Result<ServerReply, SubmitError> {
        let mut assembler = ReplyAssembler::default();
        loop {
            let line = self.line()?;
            match assembler.feed(&line) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => return Err(lost(e)),
            }
        }
    }

    fn line(&mut self) -> Result<Vec<u8>, SubmitError> {
        loop {
            if let Some(end) = self.input.iter().position(|&b| b == b'\n') {
                return Ok(self.input.drain(..=end).collect());
            }
            if self.input.len() > MAX_REPLY_LINE {
                return Err(lost("reply line too long"));
            }
            self.arm()?;
            let mut buf = [0u8; 4096];
            let n = match &mut self.stream {
                Stream::Plain(tcp) => tcp.read(&mut buf),
                Stream::Tls(tls) => tls.read(&mut buf),
                Stream::Closed => return Err(lost("closed")),
            }
            .map_err(lost)?;
            if n == 0 {
                return Err(lost("the engine closed the connection"));
            }
            self.input.extend_from_slice(&buf[..n]);
        }
    }

    /// Switches to TLS after the server's 220 (RFC 3207 §4).
    fn start_tls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        ip: IpAddr,
    ) -> Result<(), SubmitError> {
        if !self.input.is_empty() {
            // RFC 3207 §5: nothing may be taken as sent over TLS that was
            // sent before it.
            return Err(lost("the engine sent data before the TLS handshake"));
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(lost("TLS is already on"));
        };
        let conn = rustls::ClientConnection::new(config, ServerName::IpAddress(ip.into()))
            .map_err(lost)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        arm(&tls.sock, self.deadline)?;
        // Drive the handshake now, so a wrong certificate fails here.
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| lost(format!("TLS handshake: {e}")))?;
        }
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
