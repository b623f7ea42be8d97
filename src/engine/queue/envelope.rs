//! The envelope of a queued message: who sent it, to whom, and how delivery
//! to each recipient stands. Stored beside the message as `<id>.json`.
//!
//! Owns: the envelope schema and the per-recipient state rules.
//!
//! Invariants:
//! - A recipient moves `pending` → `delivered` or `pending` → `failed`, never
//!   back; the message leaves the queue when no recipient is `pending`.
//! - Times are Unix seconds (UTC).
//!
//! Reads untrusted input: envelope files from the spool (they are ours, but
//! may be truncated or damaged by a crash or a disk; `spool.rs` checks them).

use serde::{Deserialize, Serialize};

use super::backoff::retry_delay;
use super::lane::QueueLane;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The queue id; also the file name stem.
    pub id: String,
    /// The reverse path; empty for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<Recipient>,
    /// Unix seconds when the message was accepted.
    pub arrived_at: u64,
    /// Message octets as stored (Received: header included).
    pub size: u64,
    /// MAIL FROM had BODY=8BITMIME (RFC 6152).
    pub body_8bit: bool,
    /// MAIL FROM had SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// The login that submitted it, for policy (lanes, limits). Never written
    /// into the message.
    #[serde(default)]
    pub authenticated: Option<String>,
    /// The lane it was classified into on arrival (R4).
    #[serde(default)]
    pub lane: QueueLane,
    /// Held by an admin: not attempted until released.
    #[serde(default)]
    pub held: bool,
    /// The sender has been told once that delivery is delayed.
    #[serde(default)]
    pub delay_notified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The normalized address.
    pub address: String,
    pub state: RecipientState,
    /// Delivery attempts that did not end in `delivered`.
    pub attempts: u32,
    /// Unix seconds of the next attempt while `pending`.
    pub next_attempt: u64,
    pub last_error: Option<String>,
    /// The server that gave the last answer for this recipient, for DSNs.
    #[serde(default)]
    pub remote_mta: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientState {
    Pending,
    Delivered,
    Failed,
}

impl Recipient {
    pub fn new(address: String, now: u64) -> Recipient {
        Recipient {
            address,
            state: RecipientState::Pending,
            attempts: 0,
            next_attempt: now,
            last_error: None,
            remote_mta: None,
        }
    }

    pub fn is_due(&self, now: u64) -> bool {
        self.state == RecipientState::Pending && self.next_attempt <= now
    }

    pub fn delivered(&mut self) {
        self.state = RecipientState::Delivered;
        self.last_error = None;
    }

    pub fn failed(&mut self, reason: String) {
        self.attempts = self.attempts.saturating_add(1);
        self.state = RecipientState::Failed;
        self.last_error = Some(reason);
    }

    /// A temporary failure: try again after the backoff delay.
    pub fn deferred(&mut self, reason: String, now: u64, retry_initial_secs: u64) {
        self.attempts = self.attempts.saturating_add(1);
        self.next_attempt = now.saturating_add(retry_delay(retry_initial_secs, self.attempts));
        self.last_error = Some(reason);
    }
}

impl Envelope {
    /// No recipient is pending: the message can leave the queue.
    pub fn is_final(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| r.state != RecipientState::Pending)
    }

    /// When the earliest pending recipient is due, if any.
    pub fn next_due(&self) -> Option<u64> {
        self.recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
            .map(|r| r.next_attempt)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_states_and_schedule() {
        let mut env = Envelope {
            id: "x".into(),
            sender: String::new(),
            recipients: vec![
                Recipient::new("a@x.test".into(), 100),
                Recipient::new("b@x.test".into(), 100),
            ],
            arrived_at: 100,
            size: 10,
            body_8bit: false,
            smtputf8: false,
            authenticated: None,
            lane: QueueLane::Normal,
            held: false,
            delay_notified: false,
        };
        assert_eq!(env.next_due(), Some(100));
        env.recipients[0].delivered();
        env.recipients[1].deferred("421 busy".into(), 100, 60);
        assert_eq!(env.next_due(), Some(160));
        assert!(!env.recipients[1].is_due(159) && env.recipients[1].is_due(160));
        assert!(!env.is_final());
        env.recipients[1].failed("550 gone".into());
        assert!(env.is_final());
        assert_eq!(env.next_due(), None);
        let json = serde_json::to_string(&env).unwrap();
        assert!(json.contains("\"state\":\"failed\""), "{json}");
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
    }
}
