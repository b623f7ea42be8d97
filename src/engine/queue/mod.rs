//! The queue: accepted mail waiting for delivery, in two lanes, and the
//! scheduler that delivers it.
//!
//! Owns: the spool folder (`spool.rs`, reusing finished files:
//! `recycle.rs`), queue ids (`id.rs`), envelopes
//! (`envelope.rs`), the lanes (`lane.rs`), the retry schedule
//! (`backoff.rs`), the scheduler that runs deliveries (`scheduler.rs`),
//! delivery status notifications (`dsn.rs`, `notify.rs`) and the admin's
//! queue commands (`commands.rs`, and as JSON for the console `console_api.rs`).
//!
//! Invariants:
//! - One door in: a message enters the queue only through
//!   `QueueDoor::submit` (SMTP, bounces, later webmail and bulk mail).
//! - One writer: only the scheduler changes or removes a queued message.
//! - Two lanes (R4): each has its own workers and per-destination limits;
//!   a lane never uses the other's.
//! - Nothing accepted is dropped silently: every recipient ends `delivered`,
//!   or `failed` with a DSN to the sender (never to the null sender).
//!
//! Known limit: the scheduler keeps every queued envelope in memory; a
//! bounded active window over a huge backlog (Postfix's active queue) can
//! replace the table without changing the door or the lanes.
//!
//! Reads untrusted input: message bytes are stored, not parsed; envelope
//! files are checked on recovery.

pub mod attempt;
pub mod backoff;
pub mod commands;
pub mod console_api;
pub mod door;
pub mod dsn;
pub mod envelope;
pub mod id;
pub mod lane;
pub mod notify;
mod queue_file;
mod recycle;
pub mod scheduler;
pub mod spool;

pub use door::{Draft, QueueDoor};
pub use envelope::{Envelope, Recipient, RecipientState};
pub use id::QueueId;
pub use lane::QueueLane;
pub use scheduler::Scheduler;
pub use spool::{Spool, SpoolError};

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
