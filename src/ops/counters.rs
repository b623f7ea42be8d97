//! The engine's counters, process-wide: one engine runs per process, and
//! Prometheus counters are totals since the process started (a restart
//! resets them, which Prometheus' `rate()` understands).
//!
//! Owns: atomics only; nothing on disk.
//!
//! Invariants:
//! - `accepted` counts messages after their `250` (one per message);
//!   `delivered`, `deferred` and `bounced` count recipients, one per
//!   outcome of a delivery attempt (`bounced` = failed for good, a DSN
//!   follows unless the sender was `<>`).
//! - The SMTP connection gauge goes up when a session starts and down when
//!   its guard drops, whatever way the session ends.
//!
//! Reads untrusted input: no.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static DELIVERED: AtomicU64 = AtomicU64::new(0);
static DEFERRED: AtomicU64 = AtomicU64::new(0);
static BOUNCED: AtomicU64 = AtomicU64::new(0);
static SMTP_OPEN: AtomicU64 = AtomicU64::new(0);

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailCounters {
    pub accepted: u64,
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
    pub smtp_connections: u64,
}

pub fn message_accepted() {
    ACCEPTED.fetch_add(1, Ordering::Relaxed);
}

/// One recipient's outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Deferred,
    Bounced,
}

pub fn recipient_outcome(outcome: Outcome) {
    let counter = match outcome {
        Outcome::Delivered => &DELIVERED,
        Outcome::Deferred => &DEFERRED,
        Outcome::Bounced => &BOUNCED,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Held for the life of one SMTP session.
pub struct SmtpConnectionGuard(());

impl SmtpConnectionGuard {
    pub fn open() -> SmtpConnectionGuard {
        SMTP_OPEN.fetch_add(1, Ordering::Relaxed);
        SmtpConnectionGuard(())
    }
}

impl Drop for SmtpConnectionGuard {
    fn drop(&mut self) {
        SMTP_OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

pub fn current() -> MailCounters {
    MailCounters {
        accepted: ACCEPTED.load(Ordering::Relaxed),
        delivered: DELIVERED.load(Ordering::Relaxed),
        deferred: DEFERRED.load(Ordering::Relaxed),
        bounced: BOUNCED.load(Ordering::Relaxed),
        smtp_connections: SMTP_OPEN.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_only_grow_and_the_gauge_follows_guards() {
        let before = current();
        message_accepted();
        recipient_outcome(Outcome::Delivered);
        recipient_outcome(Outcome::Bounced);
        let guard = SmtpConnectionGuard::open();
        let during = current();
        assert!(during.accepted > before.accepted);
        assert!(during.delivered > before.delivered);
        assert!(during.bounced > before.bounced);
        assert!(during.smtp_connections >= 1);
        drop(guard);
        // Other tests in this process may hold guards; ours is gone.
        assert!(current().smtp_connections < during.smtp_connections + 1);
    }
}
