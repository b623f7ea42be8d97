//! The queue: accepted mail waiting for delivery, and the worker that
//! delivers it.
//!
//! Owns: the spool folder (`spool.rs`), queue ids (`id.rs`), envelopes
//! (`envelope.rs`), the retry schedule (`backoff.rs`) and the delivery
//! worker (`worker.rs`).
//!
//! Invariants:
//! - One door in: a message enters the queue only through `Spool::accept`,
//!   then is announced to the worker on the `NewMail` channel.
//! - One writer: only the worker changes or removes a queued message.
//! - Nothing accepted is dropped silently: every recipient ends `delivered`,
//!   or `failed` with a log line (and, later, a DSN).
//!
//! Seam for the two-lane queue (R4, a later issue): today there is a single
//! lane, one `QueueWorker` that holds every queued envelope in memory. The
//! lanes go in at `NewMail`: the sender side classifies each envelope
//! (recipient count, sender list, explicit bulk submission) and sends it to
//! the normal or the bulk worker, each with its own concurrency limit, and
//! `QueueWorker` then keeps only a bounded active window over its lane's
//! backlog (Postfix's active queue) instead of the whole queue.
//!
//! Reads untrusted input: message bytes are stored, not parsed; envelope
//! files are checked on recovery.

pub mod backoff;
pub mod envelope;
pub mod id;
pub mod spool;
pub mod worker;

pub use envelope::{Envelope, Recipient, RecipientState};
pub use id::QueueId;
pub use spool::{Spool, SpoolError};
pub use worker::QueueWorker;

/// The channel on which newly accepted messages reach the worker.
pub type NewMail = smol::channel::Sender<Envelope>;

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
