//! The scheduler: which queued message is attempted when, in which lane.
//!
//! Owns: the in-memory table of queued envelopes (loaded from the spool on
//! start, fed by the door's announcements) and, per lane, a pool of worker
//! permits. Each lane runs its own dispatch loop; a delivery attempt holds a
//! permit of its own lane only, so a bulk send can use every bulk worker and
//! everyday mail still finds its normal workers free (R4).
//!
//! Invariants:
//! - An entry is `busy` while one attempt runs for it; no second attempt and
//!   no admin command touches it meanwhile.
//! - Held messages are never attempted, nor gated ones: messages recovered
//!   at start while the peer may have delivered them (`engine::shadow`),
//!   until the peer said which it took or the gate's time ran out.
//! - The loop wakes when mail arrives, when an attempt ends, when the
//!   earliest retry is due, and at least every `MAX_SLEEP`.
//!
//! Reads untrusted input: no.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use smol::channel::{Receiver, Sender};
use smol::lock::Semaphore;
use smol::{Executor, Timer};

use super::attempt::Attempter;
use super::{unix_now, Envelope, QueueLane};
use crate::config::Config;

/// Longest sleep between two looks at the table.
const MAX_SLEEP: Duration = Duration::from_secs(30);

struct Entry {
    envelope: Envelope,
    busy: bool,
    /// An admin's hold or delete that arrived while an attempt was running;
    /// applied as soon as it ends.
    after_attempt: Option<AfterAttempt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Hold,
    Delete,
}

/// What an admin's hold or delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Now(Envelope),
    /// The message is being delivered; the action follows the attempt.
    AfterAttempt,
}

pub struct Scheduler {
    config: Arc<Config>,
    attempter: Arc<Attempter>,
    table: Mutex<BTreeMap<String, Entry>>,
    /// Ids not to attempt yet (see `gate`).
    gated: Mutex<HashSet<String>>,
    wake: [(Sender<()>, Receiver<()>); 2],
}

/// Why an admin command on a queued message could not be done.
#[derive(Debug, thiserror::Error)]
pub enum QueueCommandError {
    #[error("no message {0} in the queue (it may have been delivered already)")]
    NotFound(String),
    #[error("message {0} is being delivered right now; try again in a moment")]
    Busy(String),
    #[error("cannot record the change in the spool: {0}")]
    Spool(#[from] super::SpoolError),
}

impl Entry {
    fn idle(envelope: Envelope) -> Entry {
        Entry {
            envelope,
            busy: false,
            after_attempt: None,
        }
    }
}

impl Scheduler {
    pub fn new(
        config: Arc<Config>,
        attempter: Arc<Attempter>,
        recovered: Vec<Envelope>,
    ) -> Arc<Self> {
        let table = recovered
            .into_iter()
            .map(|envelope| (envelope.id.clone(), Entry::idle(envelope)))
            .collect();
        Arc::new(Scheduler {
            config,
            attempter,
            table: Mutex::new(table),
            gated: Mutex::new(HashSet::new()),
            wake: [smol::channel::bounded(1), smol::channel::bounded(1)],
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        match self.table.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn gated(&self) -> MutexGuard<'_, HashSet<String>> {
        self.gated.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps every message queued now from being attempted until
    /// `open_gate` (a restarted node waits to hear which of its messages
    /// the peer delivered for it).
    pub fn gate_all(&self) {
        let ids: Vec<String> = self.table().keys().cloned().collect();
        self.gated().extend(ids);
    }

    pub fn open_gate(&self) {
        let was_closed = {
            let mut gated = self.gated();
            let closed = !gated.is_empty();
            gated.clear();
            closed
        };
        if was_closed {
            for lane in QueueLane::ALL {
                self.wake(lane);
            }
        }
    }

    fn wake(&self, lane: QueueLane) {
        let _ = self.wake[lane.index()].0.try_send(());
    }

    /// Starts the intake task and one dispatch loop per lane on `executor`.
    pub fn spawn(
        self: &Arc<Self>,
        executor: &Arc<Executor<'static>>,
        announced: Receiver<Envelope>,
    ) {
        let this = self.clone();
        executor
            .spawn(async move {
                while let Ok(envelope) = announced.recv().await {
                    let lane = envelope.lane;
                    this.table()
                        .insert(envelope.id.clone(), Entry::idle(envelope));
                    this.wake(lane);
                }
            })
            .detach();
        for lane in QueueLane::ALL {
            let workers = match lane {
                QueueLane::Normal => self.config.queue.normal_workers,
                QueueLane::Bulk => self.config.queue.bulk_workers,
            };
            executor
                .spawn(self.clone().run_lane(lane, workers, executor.clone()))
                .detach();
        }
        tracing::info!(queued = self.table().len(), "queue scheduler started");
    }

    async fn run_lane(
        self: Arc<Self>,
        lane: QueueLane,
        workers: usize,
        executor: Arc<Executor<'static>>,
    ) {
        let permits = Arc::new(Semaphore::new(workers));
        loop {
            let permit = permits.acquire_arc().await;
            if let Some(envelope) = self.claim_next(lane) {
                let this = self.clone();
                executor
                    .spawn(async move {
                        let envelope = this.attempter.run(envelope).await;
                        this.finish(envelope);
                        drop(permit);
                        this.wake(lane);
                    })
                    .detach();
                continue;
            }
            drop(permit);
            let sleep = self
                .next_due(lane)
                .map(|t| Duration::from_secs(t.saturating_sub(unix_now())))
                .map_or(MAX_SLEEP, |d| {
                    d.clamp(Duration::from_millis(200), MAX_SLEEP)
                });
            let wake = self.wake[lane.index()].1.clone();
            smol::future::or(
                async {
                    let _ = wake.recv().await;
                },
                async {
                    Timer::after(sleep).await;
                },
            )
            .await;
        }
    }

    /// The due message of `lane` waiting longest, marked busy.
    fn claim_next(&self, lane: QueueLane) -> Option<Envelope> {
        let now = unix_now();
        let mut table = self.table();
        let gated = self.gated();
        let entry = table
            .values_mut()
            .filter(|e| !e.busy && !e.envelope.held && e.envelope.lane == lane)
            .filter(|e| !gated.contains(&e.envelope.id))
            .filter_map(|e| Some((e.envelope.next_due()?, e)))
            .filter(|(due, _)| *due <= now)
            .min_by_key(|(due, _)| *due)
            .map(|(_, e)| e)?;
        entry.busy = true;
        Some(entry.envelope.clone())
    }

    fn next_due(&self, lane: QueueLane) -> Option<u64> {
        let table = self.table();
        let gated = self.gated();
        table
            .values()
            .filter(|e| !e.busy && !e.envelope.held && e.envelope.lane == lane)
            .filter(|e| !gated.contains(&e.envelope.id))
            .filter_map(|e| e.envelope.next_due())
            .min()
    }

    fn finish(&self, mut envelope: Envelope) {
        let mut table = self.table();
        let after = table.get(&envelope.id).and_then(|e| e.after_attempt);
        if envelope.is_final() {
            table.remove(&envelope.id);
            return;
        }
        match after {
            Some(AfterAttempt::Delete) => {
                table.remove(&envelope.id);
                match self.attempter.remove(&envelope) {
                    Ok(()) => {
                        tracing::info!(queue_id = %envelope.id, "deleted by an admin after its attempt")
                    }
                    Err(e) => {
                        tracing::warn!(queue_id = %envelope.id, error = %e, "cannot delete a message")
                    }
                }
            }
            Some(AfterAttempt::Hold) => {
                envelope.held = true;
                if let Err(e) = self.attempter.save(&envelope) {
                    tracing::warn!(queue_id = %envelope.id, error = %e, "cannot record a hold");
                }
                table.insert(envelope.id.clone(), Entry::idle(envelope));
            }
            None => {
                table.insert(envelope.id.clone(), Entry::idle(envelope));
            }
        }
    }

    /// Holds or deletes a message: now if it is idle, else right after its
    /// current attempt.
    pub fn hold_or_delete(
        &self,
        id: &str,
        action: AfterAttempt,
    ) -> Result<Applied, QueueCommandError> {
        {
            let mut table = self.table();
            let entry = table
                .get_mut(id)
                .ok_or_else(|| QueueCommandError::NotFound(id.to_string()))?;
            if entry.busy {
                entry.after_attempt = Some(action);
                return Ok(Applied::AfterAttempt);
            }
        }
        match action {
            AfterAttempt::Hold => self.modify(id, |e| e.held = true).map(Applied::Now),
            AfterAttempt::Delete => self.delete(id).map(Applied::Now),
        }
    }

    // Admin commands (through the engine's control socket).

    /// Every queued envelope, oldest first.
    pub fn snapshot(&self) -> Vec<Envelope> {
        let mut all: Vec<Envelope> = self.table().values().map(|e| e.envelope.clone()).collect();
        all.sort_by(|a, b| a.arrived_at.cmp(&b.arrived_at).then(a.id.cmp(&b.id)));
        all
    }

    /// Changes an idle message with `change`, records it in the spool, and
    /// wakes its lane.
    pub fn modify(
        &self,
        id: &str,
        change: impl FnOnce(&mut Envelope),
    ) -> Result<Envelope, QueueCommandError> {
        let mut table = self.table();
        let entry = table
            .get_mut(id)
            .ok_or_else(|| QueueCommandError::NotFound(id.to_string()))?;
        if entry.busy {
            return Err(QueueCommandError::Busy(id.to_string()));
        }
        let mut changed = entry.envelope.clone();
        change(&mut changed);
        self.attempter.save(&changed)?;
        entry.envelope = changed.clone();
        drop(table);
        self.wake(changed.lane);
        Ok(changed)
    }

    /// Removes an idle message from the queue without delivering it.
    pub fn delete(&self, id: &str) -> Result<Envelope, QueueCommandError> {
        let mut table = self.table();
        match table.get(id) {
            None => return Err(QueueCommandError::NotFound(id.to_string())),
            Some(e) if e.busy => return Err(QueueCommandError::Busy(id.to_string())),
            Some(_) => {}
        }
        let envelope = table
            .remove(id)
            .map(|e| e.envelope)
            .ok_or_else(|| QueueCommandError::NotFound(id.to_string()))?;
        if let Err(e) = self.attempter.remove(&envelope) {
            table.insert(envelope.id.clone(), Entry::idle(envelope));
            return Err(e.into());
        }
        Ok(envelope)
    }

    /// Ids of messages being delivered right now.
    pub fn busy_ids(&self) -> Vec<String> {
        self.table()
            .iter()
            .filter(|(_, e)| e.busy)
            .map(|(id, _)| id.clone())
            .collect()
    }
}
