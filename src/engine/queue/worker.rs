//! The queue worker: delivers queued messages and records what happened.
//!
//! Owns: the in-memory table of queued envelopes, loaded from the spool on
//! start and fed by the `NewMail` channel. It is the spool's only writer
//! after acceptance.
//!
//! Invariants:
//! - It wakes at once when new mail arrives, when the earliest retry is due,
//!   and at least every `MAX_SLEEP` in any case.
//! - Every change of a recipient's state is written to the envelope file
//!   before the next message is attempted; a finished message's files are
//!   removed.
//! - Routes are looked up again at delivery time: a user deleted since
//!   acceptance fails, a user added since is delivered.
//!
//! Reads untrusted input: no (queued data was checked on the way in).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use smol::channel::Receiver;
use smol::Timer;

use super::{unix_now, Envelope, QueueId, Spool};
use crate::config::Config;
use crate::directory::snapshot::{RecipientRoute, SnapshotWatcher};
use crate::engine::delivery::lmtp_client::{self, LmtpTransaction};
use crate::engine::delivery::DeliveryOutcome;

/// Longest sleep between two passes over the queue.
const MAX_SLEEP: Duration = Duration::from_secs(60);

const REMOTE_NOT_YET: &str = "remote delivery is not implemented yet (two-lane queue issue)";

pub struct QueueWorker {
    config: Arc<Config>,
    directory: Arc<SnapshotWatcher>,
    spool: Arc<Spool>,
    new_mail: Receiver<Envelope>,
    queued: BTreeMap<String, Envelope>,
}

impl QueueWorker {
    /// A worker for `recovered` (from `Spool::recover`) and mail to come.
    pub fn new(
        config: Arc<Config>,
        directory: Arc<SnapshotWatcher>,
        spool: Arc<Spool>,
        new_mail: Receiver<Envelope>,
        recovered: Vec<Envelope>,
    ) -> QueueWorker {
        let queued = recovered.into_iter().map(|e| (e.id.clone(), e)).collect();
        QueueWorker {
            config,
            directory,
            spool,
            new_mail,
            queued,
        }
    }

    pub async fn run(mut self) {
        tracing::info!(queued = self.queued.len(), "queue worker started");
        loop {
            while let Ok(envelope) = self.new_mail.try_recv() {
                self.queued.insert(envelope.id.clone(), envelope);
            }
            let now = unix_now();
            let due: Vec<String> = self
                .queued
                .values()
                .filter(|e| e.next_due().is_some_and(|t| t <= now))
                .map(|e| e.id.clone())
                .collect();
            for id in due {
                self.attempt(&id).await;
            }
            let sleep = self
                .queued
                .values()
                .filter_map(Envelope::next_due)
                .min()
                .map(|t| Duration::from_secs(t.saturating_sub(unix_now())))
                .map_or(MAX_SLEEP, |d| d.min(MAX_SLEEP));
            let woken = smol::future::or(async { self.new_mail.recv().await.ok() }, async {
                Timer::after(sleep).await;
                None
            })
            .await;
            if let Some(envelope) = woken {
                self.queued.insert(envelope.id.clone(), envelope);
            }
        }
    }

    /// One delivery attempt for the due recipients of one message.
    async fn attempt(&mut self, key: &str) {
        let Some(mut envelope) = self.queued.remove(key) else {
            return;
        };
        let Some(id) = QueueId::parse(&envelope.id) else {
            tracing::warn!(queue_id = %envelope.id, "dropping an envelope with a malformed id from memory");
            return;
        };
        let now = unix_now();
        let lifetime = self
            .config
            .engine
            .queue_lifetime_days
            .saturating_mul(86_400);
        if now.saturating_sub(envelope.arrived_at) > lifetime {
            self.give_up(&mut envelope);
        } else {
            self.deliver_due(&id, &mut envelope, now).await;
        }
        let spool = self.spool.clone();
        let finished = envelope.is_final();
        let saved = {
            let (id, envelope) = (id.clone(), envelope.clone());
            smol::unblock(move || {
                if finished {
                    spool.remove(&id)
                } else {
                    spool.save_envelope(&id, &envelope)
                }
            })
            .await
        };
        match saved {
            Ok(()) if finished => {
                tracing::info!(queue_id = %id, "message finished; removed from the queue")
            }
            Ok(()) => {}
            Err(e) => tracing::warn!(queue_id = %id, error = %e, "cannot record delivery state"),
        }
        if !finished {
            self.queued.insert(envelope.id.clone(), envelope);
        }
    }

    fn give_up(&self, envelope: &mut Envelope) {
        let days = self.config.engine.queue_lifetime_days;
        for r in envelope
            .recipients
            .iter_mut()
            .filter(|r| r.state == super::RecipientState::Pending)
        {
            let last = r.last_error.clone().unwrap_or_default();
            tracing::warn!(queue_id = %envelope.id, recipient = %r.address, last_error = %last,
                "giving up: the message was in the queue longer than {days} days");
            // TODO(rfc3464): send a delivery status notification to the sender.
            r.failed(format!(
                "gave up after {days} days in the queue; last error: {last}"
            ));
        }
    }

    async fn deliver_due(&self, id: &QueueId, envelope: &mut Envelope, now: u64) {
        let retry = self.config.engine.retry_initial_secs;
        let snapshot = self.directory.current();
        let mut local = Vec::new();
        for (i, r) in envelope.recipients.iter_mut().enumerate() {
            if !r.is_due(now) {
                continue;
            }
            match snapshot.route(&r.address) {
                RecipientRoute::Local => local.push(i),
                RecipientRoute::Remote => {
                    // TODO(two-lane queue issue): deliver by MX with DKIM.
                    r.deferred(REMOTE_NOT_YET.into(), now, retry);
                }
                route => {
                    let reason =
                        format!("550 5.1.1 recipient no longer deliverable here ({route:?})");
                    fail(id, &r.address, &reason);
                    r.failed(reason);
                }
            }
        }
        if local.is_empty() {
            return;
        }
        let spool = self.spool.clone();
        let message = {
            let id = id.clone();
            smol::unblock(move || spool.read_message(&id)).await
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(queue_id = %id, error = %e, "cannot read the queued message; will retry");
                for &i in &local {
                    envelope.recipients[i].deferred(e.to_string(), now, retry);
                }
                return;
            }
        };
        let addresses: Vec<String> = local
            .iter()
            .map(|&i| envelope.recipients[i].address.clone())
            .collect();
        let tx = LmtpTransaction {
            sender: &envelope.sender,
            recipients: &addresses,
            body_8bit: envelope.body_8bit,
            smtputf8: envelope.smtputf8,
            message: &message,
        };
        let outcomes = lmtp_client::deliver(
            self.config.engine.lmtp_target,
            &self.config.node.hostname,
            &tx,
        )
        .await;
        for (&i, outcome) in local.iter().zip(outcomes) {
            let r = &mut envelope.recipients[i];
            match outcome {
                DeliveryOutcome::Delivered => {
                    tracing::info!(queue_id = %id, recipient = %r.address, "delivered to the mailbox");
                    r.delivered();
                }
                DeliveryOutcome::Deferred(reason) => {
                    tracing::warn!(queue_id = %id, recipient = %r.address, reason = %reason,
                        attempts = r.attempts + 1, "delivery deferred");
                    r.deferred(reason, now, retry);
                }
                DeliveryOutcome::Failed(reason) => {
                    fail(id, &r.address, &reason);
                    r.failed(reason);
                }
            }
        }
    }
}

fn fail(id: &QueueId, recipient: &str, reason: &str) {
    // TODO(rfc3464): send a delivery status notification to the sender.
    tracing::warn!(queue_id = %id, recipient = %recipient, reason = %reason, "delivery failed permanently");
}
