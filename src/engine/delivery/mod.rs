//! Delivery out of the queue: how a queued message reaches its recipients.
//!
//! Owns: nothing on disk. `lmtp_client` hands local mail to the mailbox role
//! (RFC 2033). Remote delivery is built from `dns` (the resolver, and the
//! only place that knows hickory-resolver runs on tokio), `mx` (which hosts
//! to try, RFC 5321 §5.1, RFC 7505), `smtp_client` (one outbound SMTP
//! session, over `connection`) and `tls_client` (opportunistic STARTTLS).
//! `wire` holds what the clients share: reply parsing and dot-stuffing (the
//! mailbox role's submission client, `mailbox::submission`, uses it too).
//!
//! Invariant: a delivery attempt reports one `DeliveryOutcome` per recipient
//! and never touches the spool; the queue worker alone records results.
//!
//! Reads untrusted input: replies of the LMTP server (our own mailbox role,
//! still bounded and parsed defensively), and of remote SMTP servers and DNS.

mod connection;
pub mod dns;
#[cfg(test)]
pub(crate) mod dns_test_server;
pub mod lmtp_client;
pub mod mx;
pub mod remote;
pub mod smtp_client;
pub mod tls_client;
pub(crate) mod wire;

/// What became of one recipient in one attempt; data, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again later (4xx, connection refused, mailbox role down).
    Deferred(String),
    /// Give up on this recipient (5xx).
    Failed(String),
}
