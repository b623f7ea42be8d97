//! The SMTP server: MX (port 25), submission with STARTTLS (587) and
//! submission over implicit TLS (465), RFC 5321 with the extensions of R1.
//!
//! Owns: the three listeners and every SMTP session on them. Files:
//! `command.rs` (parser), `reply.rs` (replies), `data.rs` (DATA reader),
//! `connection.rs` (framing, timeouts, TLS switch), `session.rs` (the state
//! machine and simple verbs), `auth.rs` (AUTH), `authorize.rs` (who a
//! login may act as), `accept.rs` (DATA and queueing), `server.rs`
//! (listeners).
//!
//! Invariants:
//! - Only this module parses untrusted SMTP bytes. The LMTP server reuses
//!   its parser, reader and reply type.
//! - Never an open relay: a recipient outside our domains is accepted only
//!   from a session that authenticated, which only the submission ports
//!   allow, and only over TLS.
//! - 250 after DATA means the message is durable in the spool.
//!
//! Reads untrusted input: yes, everything a peer sends.

mod accept;
mod auth;
mod authenticate;
mod authorize;
pub(crate) mod command;
pub(crate) mod connection;
pub(crate) mod data;
pub(crate) mod reply;
pub(crate) mod server;
mod session;

use std::sync::Arc;

use crate::config::Config;
use crate::directory::snapshot::SnapshotWatcher;
use crate::engine::queue::QueueDoor;

/// Which listener a session came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    /// Mail from other servers; no AUTH, local recipients only.
    Mx,
    /// Submission (RFC 6409) with STARTTLS; AUTH required, only after TLS.
    Submission,
    /// Submission over implicit TLS (RFC 8314 §3.3).
    Submissions,
}

impl Port {
    pub(crate) fn is_submission(self) -> bool {
        matches!(self, Port::Submission | Port::Submissions)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Port::Mx => "smtp",
            Port::Submission => "submission",
            Port::Submissions => "submissions",
        }
    }
}

/// What every session shares.
pub(crate) struct SmtpContext {
    pub(crate) config: Arc<Config>,
    pub(crate) directory: Arc<SnapshotWatcher>,
    pub(crate) tls: futures_rustls::TlsAcceptor,
    pub(crate) door: Arc<QueueDoor>,
    /// Inbound SPF/DKIM/DMARC checks; `None` when they could not be set up.
    pub(crate) authenticator: Option<Arc<crate::auth::Authenticator>>,
    pub(crate) signing: Arc<crate::engine::signing::SigningKeys>,
    /// The webmail's submission secret (`auth::service`); `None` when it
    /// could not be read, and then no service login is accepted.
    pub(crate) service: Option<crate::auth::service::ServiceSecret>,
}
