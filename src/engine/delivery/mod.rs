//! Delivery out of the queue: how a queued message reaches its recipients.
//!
//! Owns: nothing on disk. `lmtp_client` hands local mail to the mailbox role
//! (RFC 2033). Remote delivery by MX (with DKIM signing) comes with the
//! two-lane queue issue and will live beside it here.
//!
//! Invariant: a delivery attempt reports one `DeliveryOutcome` per recipient
//! and never touches the spool; the queue worker alone records results.
//!
//! Reads untrusted input: replies of the LMTP server (our own mailbox role,
//! still bounded and parsed defensively).

pub mod lmtp_client;

/// What became of one recipient in one attempt; data, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again later (4xx, connection refused, mailbox role down).
    Deferred(String),
    /// Give up on this recipient (5xx).
    Failed(String),
}
