//! The admin's queue commands: `campusmail queue list|show|hold|release|
//! retry|delete|stats`, and the JSON commands of `console_api`.
//!
//! Commands are data (`QueueCommand`), executed against a `QueueView`: the
//! running engine's scheduler (through the engine's control socket) or, when
//! the engine is stopped, the spool itself. One formatter for both.
//!
//! Invariants:
//! - A message being delivered right now is never changed under the
//!   running attempt: hold and delete wait for the attempt to end (and say
//!   so); release and retry ask to try again.
//! - `delete` removes a message without a bounce: it is the admin's call.
//!
//! Reads untrusted input: queue ids typed by the admin (checked).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::console_api::{self, ListingFilter, QueueAction};
use super::scheduler::{AfterAttempt, Applied, QueueCommandError, Scheduler};
use super::{unix_now, Envelope, QueueId, QueueLane, RecipientState, Spool};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum QueueCommand {
    List,
    Show {
        id: String,
    },
    Hold {
        id: String,
    },
    Release {
        id: String,
    },
    Retry {
        id: String,
    },
    Delete {
        id: String,
    },
    Stats,
    /// JSON for the mailbox role (`console_api`): counters and lanes.
    Report,
    /// JSON: the messages matching a filter.
    Listing {
        filter: ListingFilter,
    },
    /// JSON: one admin action from the console.
    Act {
        id: String,
        action: QueueAction,
    },
}

/// What the commands need of a queue, running or stopped.
pub trait QueueView {
    fn envelopes(&self) -> Vec<Envelope>;
    fn busy(&self, id: &str) -> bool;
    fn modify(
        &self,
        id: &str,
        change: &dyn Fn(&mut Envelope),
    ) -> Result<Envelope, QueueCommandError>;
    /// Holds or deletes, now or right after a running attempt.
    fn hold_or_delete(&self, id: &str, action: AfterAttempt) -> Result<Applied, QueueCommandError>;
    /// The spool's folder (for the shadow copies this node holds).
    fn spool_root(&self) -> Option<std::path::PathBuf> {
        None
    }
}

impl QueueView for Scheduler {
    fn envelopes(&self) -> Vec<Envelope> {
        self.snapshot()
    }
    fn busy(&self, id: &str) -> bool {
        self.busy_ids().iter().any(|b| b == id)
    }
    fn modify(
        &self,
        id: &str,
        change: &dyn Fn(&mut Envelope),
    ) -> Result<Envelope, QueueCommandError> {
        Scheduler::modify(self, id, change)
    }
    fn hold_or_delete(&self, id: &str, action: AfterAttempt) -> Result<Applied, QueueCommandError> {
        Scheduler::hold_or_delete(self, id, action)
    }
    fn spool_root(&self) -> Option<std::path::PathBuf> {
        Some(self.config().spool_dir())
    }
}

/// The queue of a stopped engine, read from the spool.
pub struct OfflineQueue {
    spool: Spool,
    root: std::path::PathBuf,
}

impl OfflineQueue {
    pub fn open(spool_dir: &std::path::Path) -> Result<OfflineQueue, super::SpoolError> {
        Ok(OfflineQueue {
            spool: Spool::open(spool_dir)?,
            root: spool_dir.to_path_buf(),
        })
    }

    fn find(&self, id: &str) -> Result<(QueueId, Envelope), QueueCommandError> {
        let not_found = || QueueCommandError::NotFound(id.to_string());
        let qid = QueueId::parse(id).ok_or_else(not_found)?;
        let envelope = self
            .envelopes()
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(not_found)?;
        Ok((qid, envelope))
    }
}

impl QueueView for OfflineQueue {
    fn envelopes(&self) -> Vec<Envelope> {
        let mut all = self.spool.list().unwrap_or_default();
        all.sort_by(|a, b| a.arrived_at.cmp(&b.arrived_at).then(a.id.cmp(&b.id)));
        all
    }
    fn busy(&self, _id: &str) -> bool {
        false
    }
    fn spool_root(&self) -> Option<std::path::PathBuf> {
        Some(self.root.clone())
    }
    fn modify(
        &self,
        id: &str,
        change: &dyn Fn(&mut Envelope),
    ) -> Result<Envelope, QueueCommandError> {
        let (qid, mut envelope) = self.find(id)?;
        change(&mut envelope);
        self.spool.save_envelope(&qid, &envelope)?;
        Ok(envelope)
    }
    fn hold_or_delete(&self, id: &str, action: AfterAttempt) -> Result<Applied, QueueCommandError> {
        match action {
            AfterAttempt::Hold => self.modify(id, &|e| e.held = true).map(Applied::Now),
            AfterAttempt::Delete => {
                let (qid, envelope) = self.find(id)?;
                self.spool.remove(&qid)?;
                Ok(Applied::Now(envelope))
            }
        }
    }
}

/// Runs `command`; the text is what the admin sees.
pub fn execute(queue: &dyn QueueView, command: &QueueCommand) -> Result<String, QueueCommandError> {
    let now = unix_now();
    Ok(match command {
        QueueCommand::List => list(queue, now),
        QueueCommand::Show { id } => {
            let envelope = queue
                .envelopes()
                .into_iter()
                .find(|e| &e.id == id)
                .ok_or_else(|| QueueCommandError::NotFound(id.clone()))?;
            show(&envelope, queue.busy(id), now)
        }
        QueueCommand::Hold { id } => match queue.hold_or_delete(id, AfterAttempt::Hold)? {
            Applied::Now(_) => {
                format!("{id} held: it will not be attempted until `campusmail queue release {id}`")
            }
            Applied::AfterAttempt => {
                format!("{id} is being delivered right now; it will be held when this attempt ends")
            }
        },
        QueueCommand::Release { id } => {
            queue.modify(id, &|e| e.held = false)?;
            format!("{id} released")
        }
        QueueCommand::Retry { id } => {
            queue.modify(id, &|e| {
                for r in &mut e.recipients {
                    if r.state == RecipientState::Pending {
                        r.next_attempt = unix_now();
                    }
                }
            })?;
            format!("{id} will be attempted now")
        }
        QueueCommand::Delete { id } => match queue.hold_or_delete(id, AfterAttempt::Delete)? {
            Applied::Now(e) => format!(
                "{id} deleted ({} pending recipient(s) will not get it; no bounce was sent)",
                pending(&e)
            ),
            Applied::AfterAttempt => format!(
                "{id} is being delivered right now; it will be deleted when this attempt ends \
                 (recipients this attempt reaches still get it)"
            ),
        },
        QueueCommand::Stats => stats(queue, now),
        QueueCommand::Report => json(&console_api::report(queue)),
        QueueCommand::Listing { filter } => json(&console_api::listing(queue, filter)),
        QueueCommand::Act { id, action } => json(&console_api::act(queue, id, *action)),
    })
}

fn json<T: Serialize>(value: &T) -> String {
    // Plain data (strings, numbers, enums): serializing cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn pending(e: &Envelope) -> usize {
    e.recipients
        .iter()
        .filter(|r| r.state == RecipientState::Pending)
        .count()
}

fn age(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn list(queue: &dyn QueueView, now: u64) -> String {
    let envelopes = queue.envelopes();
    if envelopes.is_empty() {
        return "the queue is empty".into();
    }
    let mut out = String::from("ID\tLANE\tAGE\tSIZE\tSTATE\tPENDING\tSENDER\tNEXT TRY\n");
    for e in &envelopes {
        let state = if queue.busy(&e.id) {
            "sending"
        } else if e.held {
            "held"
        } else {
            "waiting"
        };
        let next = e
            .next_due()
            .map(|t| {
                if t <= now {
                    "now".into()
                } else {
                    format!("in {}", age(t, now))
                }
            })
            .unwrap_or_else(|| "-".into());
        let sender = if e.sender.is_empty() { "<>" } else { &e.sender };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}/{}\t{}\t{}",
            e.id,
            e.lane,
            age(now, e.arrived_at),
            e.size,
            state,
            pending(e),
            e.recipients.len(),
            sender,
            next
        );
    }
    out.trim_end().to_string()
}

fn show(e: &Envelope, busy: bool, now: u64) -> String {
    let mut out = String::new();
    let sender = if e.sender.is_empty() {
        "<> (a notification)"
    } else {
        &e.sender
    };
    let _ = writeln!(out, "id:        {}", e.id);
    let _ = writeln!(out, "lane:      {}", e.lane);
    let _ = writeln!(out, "sender:    {sender}");
    let _ = writeln!(out, "arrived:   {} ago", age(now, e.arrived_at));
    let _ = writeln!(out, "size:      {} bytes", e.size);
    if let Some(login) = &e.authenticated {
        let _ = writeln!(out, "submitted: by {login}");
    }
    let state = match (busy, e.held) {
        (true, _) => "being delivered now",
        (false, true) => "held by an admin",
        (false, false) => "waiting",
    };
    let _ = writeln!(out, "state:     {state}");
    let _ = writeln!(out, "recipients:");
    for r in &e.recipients {
        let state = match r.state {
            RecipientState::Delivered => "delivered".to_string(),
            RecipientState::Failed => "failed".to_string(),
            RecipientState::Pending if r.next_attempt <= now => "pending, due now".to_string(),
            RecipientState::Pending => format!("pending, next try in {}", age(r.next_attempt, now)),
        };
        let _ = writeln!(out, "  {}  [{state}; {} attempt(s)]", r.address, r.attempts);
        if let Some(err) = &r.last_error {
            let _ = writeln!(out, "      last error: {err}");
        }
    }
    out.trim_end().to_string()
}

fn stats(queue: &dyn QueueView, now: u64) -> String {
    let envelopes = queue.envelopes();
    let mut out = String::from("LANE\tMESSAGES\tPENDING RECIPIENTS\tHELD\tOLDEST\n");
    for lane in QueueLane::ALL {
        let of_lane: Vec<&Envelope> = envelopes.iter().filter(|e| e.lane == lane).collect();
        let oldest = of_lane
            .iter()
            .map(|e| e.arrived_at)
            .min()
            .map_or("-".to_string(), |t| age(now, t));
        let _ = writeln!(
            out,
            "{lane}\t{}\t{}\t{}\t{oldest}",
            of_lane.len(),
            of_lane.iter().map(|e| pending(e)).sum::<usize>(),
            of_lane.iter().filter(|e| e.held).count(),
        );
    }
    // With a peer: the peer's messages this node holds (`engine::shadow`).
    if let Some(held) = queue
        .spool_root()
        .and_then(|root| crate::engine::shadow::held_count(&root))
    {
        let _ = writeln!(out, "shadow copies held for the peer\t{held}");
    }
    out.trim_end().to_string()
}
