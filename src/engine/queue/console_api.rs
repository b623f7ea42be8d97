//! The queue as data, for the console and the metrics of the mailbox role,
//! which reach the engine only through `engine.sock` (the roles may be two
//! processes). The CLI's commands (`commands.rs`) answer in text for
//! people; these answer in JSON for programs.
//!
//! Owns: the JSON shapes `QueueListing`, `QueuedMessage`, `ActOutcome`,
//! `EngineReport`, and the filtering of the listing (done here, in the
//! engine, so a 100,000-message backlog never crosses the socket whole).
//!
//! Invariants:
//! - Same rules as the CLI: a message being delivered is never changed
//!   under its attempt (hold and delete follow it; release and retry say
//!   busy), and delete sends no bounce.
//! - A listing holds at most `MAX_LISTED` messages, with the total that
//!   matched, and at most `MAX_RECIPIENTS_LISTED` addresses per message,
//!   with their count: a reply stays small whatever the backlog.
//!
//! Reads untrusted input: search text and ids typed by an admin (only
//! compared; ids are looked up, never used as paths here).

use serde::{Deserialize, Serialize};

use super::commands::QueueView;
use super::scheduler::{AfterAttempt, Applied, QueueCommandError};
use super::{unix_now, Envelope, QueueLane, RecipientState};
use crate::ops::counters::MailCounters;
use crate::ops::process::ProcessStats;

/// Most messages one listing returns.
pub const MAX_LISTED: usize = 500;
/// Most recipient addresses listed per message (a bulk message may have
/// thousands; the count is always given).
pub const MAX_RECIPIENTS_LISTED: usize = 20;

/// Which messages a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingFilter {
    pub lane: Option<QueueLane>,
    /// Substring (any case) of the sender or of a recipient.
    pub text: String,
    pub status: Option<MessageStatus>,
    /// Exactly this queue id.
    #[serde(default)]
    pub id: Option<String>,
}

/// The state of a queued message as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Being delivered right now.
    Sending,
    /// Held by an admin.
    Held,
    /// Waiting after a failed attempt.
    Deferred,
    /// Waiting for its first attempt.
    Waiting,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 4] = [
        MessageStatus::Sending,
        MessageStatus::Held,
        MessageStatus::Deferred,
        MessageStatus::Waiting,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MessageStatus::Sending => "sending",
            MessageStatus::Held => "held",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Waiting => "waiting",
        }
    }

    pub fn parse(text: &str) -> Option<MessageStatus> {
        MessageStatus::ALL.into_iter().find(|s| s.name() == text)
    }

    fn of(envelope: &Envelope, busy: bool) -> MessageStatus {
        if busy {
            MessageStatus::Sending
        } else if envelope.held {
            MessageStatus::Held
        } else if envelope.recipients.iter().any(|r| r.attempts > 0) {
            MessageStatus::Deferred
        } else {
            MessageStatus::Waiting
        }
    }
}

/// One queued message, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub id: String,
    pub lane: QueueLane,
    pub sender: String,
    /// The first `MAX_RECIPIENTS_LISTED` recipients.
    pub recipients: Vec<String>,
    /// How many recipients the message has in all.
    pub recipient_count: usize,
    pub pending: usize,
    pub arrived_at: u64,
    pub size: u64,
    pub status: MessageStatus,
    /// Unix seconds of the next attempt, when one is planned.
    pub next_attempt: Option<u64>,
    /// The newest error a pending recipient got.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueListing {
    pub messages: Vec<QueuedMessage>,
    /// How many matched (more than `messages` holds when over `MAX_LISTED`).
    pub matched: usize,
}

/// One lane's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneReport {
    pub lane: QueueLane,
    pub messages: u64,
    pub pending_recipients: u64,
    pub held: u64,
    pub deferred: u64,
    /// Seconds the oldest message has waited.
    pub oldest_age: u64,
}

/// What the engine says about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineReport {
    /// The engine's process id (the same as the mailbox role's when one
    /// process runs every role).
    pub pid: u32,
    pub counters: MailCounters,
    pub lanes: Vec<LaneReport>,
    pub process: ProcessStats,
}

/// An admin's action on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueAction {
    Hold,
    Release,
    Retry,
    Delete,
}

impl QueueAction {
    pub fn name(self) -> &'static str {
        match self {
            QueueAction::Hold => "hold",
            QueueAction::Release => "release",
            QueueAction::Retry => "retry",
            QueueAction::Delete => "delete",
        }
    }
}

/// What an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActOutcome {
    Done,
    /// Being delivered: done when the attempt ends (hold, delete).
    AfterAttempt,
    /// Being delivered: try again in a moment (release, retry).
    Busy,
    NotFound,
    /// The spool could not record it (the engine's log says why).
    Failed,
}

impl ActOutcome {
    pub fn code(self) -> &'static str {
        match self {
            ActOutcome::Done => "ok",
            ActOutcome::AfterAttempt => "ok_after_attempt",
            ActOutcome::Busy => "busy",
            ActOutcome::NotFound => "not_found",
            ActOutcome::Failed => "spool_error",
        }
    }
}

fn pending(e: &Envelope) -> usize {
    e.recipients
        .iter()
        .filter(|r| r.state == RecipientState::Pending)
        .count()
}

fn matches(e: &Envelope, status: MessageStatus, filter: &ListingFilter, needle: &str) -> bool {
    filter.id.as_ref().is_none_or(|id| *id == e.id)
        && filter.lane.is_none_or(|lane| lane == e.lane)
        && filter.status.is_none_or(|s| s == status)
        && (needle.is_empty()
            || e.sender.to_lowercase().contains(needle)
            || e.recipients
                .iter()
                .any(|r| r.address.to_lowercase().contains(needle)))
}

/// The messages matching `filter`, oldest first.
pub fn listing(queue: &dyn QueueView, filter: &ListingFilter) -> QueueListing {
    let needle = filter.text.trim().to_lowercase();
    let mut out = QueueListing::default();
    for e in queue.envelopes() {
        let status = MessageStatus::of(&e, queue.busy(&e.id));
        if !matches(&e, status, filter, &needle) {
            continue;
        }
        out.matched += 1;
        if out.messages.len() == MAX_LISTED {
            continue;
        }
        let last_error = e
            .recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
            .find_map(|r| r.last_error.clone());
        out.messages.push(QueuedMessage {
            id: e.id.clone(),
            lane: e.lane,
            sender: e.sender.clone(),
            recipients: e
                .recipients
                .iter()
                .take(MAX_RECIPIENTS_LISTED)
                .map(|r| r.address.clone())
                .collect(),
            recipient_count: e.recipients.len(),
            pending: pending(&e),
            arrived_at: e.arrived_at,
            size: e.size,
            status,
            next_attempt: (status != MessageStatus::Held)
                .then(|| e.next_due())
                .flatten(),
            last_error,
        });
    }
    out
}

/// The size of each lane.
pub fn lanes(queue: &dyn QueueView) -> Vec<LaneReport> {
    let now = unix_now();
    let all = queue.envelopes();
    QueueLane::ALL
        .into_iter()
        .map(|lane| {
            let mut report = LaneReport {
                lane,
                ..LaneReport::default()
            };
            for e in all.iter().filter(|e| e.lane == lane) {
                report.messages += 1;
                report.pending_recipients += pending(e) as u64;
                report.held += u64::from(e.held);
                report.deferred += u64::from(e.recipients.iter().any(|r| r.attempts > 0));
                report.oldest_age = report.oldest_age.max(now.saturating_sub(e.arrived_at));
            }
            report
        })
        .collect()
}

pub fn report(queue: &dyn QueueView) -> EngineReport {
    EngineReport {
        pid: std::process::id(),
        counters: crate::ops::counters::current(),
        lanes: lanes(queue),
        process: crate::ops::process::current(),
    }
}

/// Does `action` on message `id`.
pub fn act(queue: &dyn QueueView, id: &str, action: QueueAction) -> ActOutcome {
    let result = match action {
        QueueAction::Hold => queue.hold_or_delete(id, AfterAttempt::Hold),
        QueueAction::Delete => queue.hold_or_delete(id, AfterAttempt::Delete),
        QueueAction::Release => queue.modify(id, &|e| e.held = false).map(Applied::Now),
        QueueAction::Retry => queue
            .modify(id, &|e| {
                let now = unix_now();
                for r in &mut e.recipients {
                    if r.state == RecipientState::Pending {
                        r.next_attempt = now;
                    }
                }
            })
            .map(Applied::Now),
    };
    match result {
        Ok(Applied::Now(_)) => ActOutcome::Done,
        Ok(Applied::AfterAttempt) => ActOutcome::AfterAttempt,
        Err(QueueCommandError::NotFound(_)) => ActOutcome::NotFound,
        Err(QueueCommandError::Busy(_)) => ActOutcome::Busy,
        Err(err @ QueueCommandError::Spool(_)) => {
            tracing::error!(queue_id = %id, action = action.name(), %err, "queue action failed");
            ActOutcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::{Envelope, Recipient};
    use std::cell::RefCell;

    /// A queue in memory, for the listing and the actions.
    struct Fake {
        envelopes: RefCell<Vec<Envelope>>,
        busy: Vec<String>,
    }

    impl QueueView for Fake {
        fn envelopes(&self) -> Vec<Envelope> {
            self.envelopes.borrow().clone()
        }
        fn busy(&self, id: &str) -> bool {
            self.busy.iter().any(|b| b == id)
        }
        fn modify(
            &self,
            id: &str,
            change: &dyn Fn(&mut Envelope),
        ) -> Result<Envelope, QueueCommandError> {
            if self.busy(id) {
                return Err(QueueCommandError::Busy(id.into()));
            }
            let mut all = self.envelopes.borrow_mut();
            let e = all
                .iter_mut()
                .find(|e| e.id == id)
                .ok_or_else(|| QueueCommandError::NotFound(id.into()))?;
            change(e);
            Ok(e.clone())
        }
        fn hold_or_delete(
            &self,
            id: &str,
            action: AfterAttempt,
        ) -> Result<Applied, QueueCommandError> {
            if self.busy(id) {
                return Ok(Applied::AfterAttempt);
            }
            match action {
                AfterAttempt::Hold => self.modify(id, &|e| e.held = true).map(Applied::Now),
                AfterAttempt::Delete => {
                    let mut all = self.envelopes.borrow_mut();
                    let at = all
                        .iter()
                        .position(|e| e.id == id)
                        .ok_or_else(|| QueueCommandError::NotFound(id.into()))?;
                    Ok(Applied::Now(all.remove(at)))
                }
            }
        }
    }

    fn envelope(id: &str, sender: &str, to: &[&str], lane: QueueLane) -> Envelope {
        Envelope {
            id: id.into(),
            sender: sender.into(),
            recipients: to
                .iter()
                .map(|a| Recipient::new(a.to_string(), 0))
                .collect(),
            arrived_at: 0,
            size: 10,
            body_8bit: false,
            smtputf8: false,
            authenticated: None,
            lane,
            held: false,
            delay_notified: false,
        }
    }

    #[test]
    fn listing_filters_by_lane_text_and_state_and_caps_recipients() {
        let many: Vec<String> = (0..50).map(|i| format!("s{i}@campus.test")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut deferred = envelope("b", "notice@campus.test", &many, QueueLane::Bulk);
        deferred.recipients[0].attempts = 1;
        let queue = Fake {
            envelopes: RefCell::new(vec![
                envelope(
                    "a",
                    "alice@campus.test",
                    &["bob@remote.test"],
                    QueueLane::Normal,
                ),
                deferred,
                envelope("c", "", &["carol@remote.test"], QueueLane::Normal),
            ]),
            busy: vec!["c".into()],
        };
        let all = listing(&queue, &ListingFilter::default());
        assert_eq!(all.matched, 3);
        let bulk = &all.messages[1];
        assert_eq!(bulk.recipients.len(), MAX_RECIPIENTS_LISTED);
        assert_eq!(bulk.recipient_count, 50);
        assert_eq!(bulk.status, MessageStatus::Deferred);
        assert_eq!(all.messages[2].status, MessageStatus::Sending);
        let ids = |f: ListingFilter| -> Vec<String> {
            listing(&queue, &f)
                .messages
                .into_iter()
                .map(|m| m.id)
                .collect()
        };
        let lane = ListingFilter {
            lane: Some(QueueLane::Bulk),
            ..ListingFilter::default()
        };
        assert_eq!(ids(lane), ["b"]);
        let text = ListingFilter {
            text: " BOB@remote ".into(),
            ..ListingFilter::default()
        };
        assert_eq!(ids(text), ["a"]);
        let sent = ListingFilter {
            text: "alice".into(),
            ..ListingFilter::default()
        };
        assert_eq!(ids(sent), ["a"]);
        let waiting = ListingFilter {
            status: Some(MessageStatus::Waiting),
            ..ListingFilter::default()
        };
        assert_eq!(ids(waiting), ["a"]);
        let one = ListingFilter {
            id: Some("c".into()),
            ..ListingFilter::default()
        };
        assert_eq!(ids(one), ["c"]);
        let lanes = lanes(&queue);
        assert_eq!(lanes[0].messages, 2);
        assert_eq!(lanes[1].pending_recipients, 50);
        assert_eq!(lanes[1].deferred, 1);
    }

    #[test]
    fn actions_respect_a_running_attempt() {
        let queue = Fake {
            envelopes: RefCell::new(vec![
                envelope("a", "x@campus.test", &["y@remote.test"], QueueLane::Normal),
                envelope("c", "x@campus.test", &["y@remote.test"], QueueLane::Normal),
            ]),
            busy: vec!["c".into()],
        };
        assert_eq!(act(&queue, "a", QueueAction::Hold), ActOutcome::Done);
        assert!(queue.envelopes()[0].held);
        assert_eq!(act(&queue, "a", QueueAction::Release), ActOutcome::Done);
        assert!(!queue.envelopes()[0].held);
        assert_eq!(
            act(&queue, "c", QueueAction::Hold),
            ActOutcome::AfterAttempt
        );
        assert_eq!(act(&queue, "c", QueueAction::Retry), ActOutcome::Busy);
        assert_eq!(act(&queue, "a", QueueAction::Delete), ActOutcome::Done);
        assert_eq!(act(&queue, "a", QueueAction::Retry), ActOutcome::NotFound);
    }
}
