//! One delivery attempt of one queued message.
//!
//! Owns: the step from "these recipients are due" to "each recipient is
//! delivered, deferred or failed, and the sender has been told what failed".
//! Local recipients go over LMTP to the mailbox role, remote ones by SMTP
//! (`delivery::remote`), in chunks.
//!
//! Invariants:
//! - Each chunk's outcomes are appended to the spool's outcome log (and
//!   fsynced) before the next chunk is sent: a SIGKILL mid-delivery re-sends
//!   only chunks whose replies were never recorded, so each recipient gets
//!   one copy (except in the instant between a server's reply and that
//!   fsync). The whole envelope is rewritten once, when the attempt ends.
//!   The chunk that finishes a message with no bounce due is not logged:
//!   the message's removal, synced right after, records it instead.
//! - A DSN goes to the sender for every recipient that failed, once, and
//!   never to the null sender (no bounce of a bounce, RFC 5321 §6.1).
//! - Routes are looked up at delivery time: a user removed since acceptance
//!   fails; a user added since is delivered.
//!
//! Reads untrusted input: no (remote replies are parsed in `delivery`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::dsn::{DsnKind, DsnRecipient};
use super::notify::{dsn_status, send_dsn};
use super::{unix_now, Envelope, QueueDoor, QueueId, RecipientState, Spool, SpoolError};
use crate::config::Config;
use crate::directory::address::domain_of;
use crate::directory::snapshot::{RecipientRoute, SnapshotWatcher};
use crate::engine::delivery::lmtp_client::{self, LmtpTransaction};
use crate::engine::delivery::remote::RemoteDelivery;
use crate::engine::delivery::DeliveryOutcome;
use crate::engine::queue::QueueLane;
use crate::mailbox::folders::LANE;
use crate::ops::counters::{self, Outcome};
use crate::ops::mail_log::{MailLog, MailLogEntry};

/// Recipients per LMTP transaction (the mailbox role stores each one).
const LMTP_CHUNK: usize = 1000;
/// Recipients per SMTP transaction: every server must take 100 (RFC 5321 §4.5.3.1.8).
const REMOTE_CHUNK: usize = 100;

pub struct Attempter {
    config: Arc<Config>,
    directory: Arc<SnapshotWatcher>,
    spool: Arc<Spool>,
    door: Arc<QueueDoor>,
    remote: Arc<RemoteDelivery>,
    /// One line per recipient per attempt (`ops::mail_log`).
    mail_log: Arc<MailLog>,
}

/// What one attempt did to one recipient (index into the envelope).
struct Result1 {
    index: usize,
    outcome: DeliveryOutcome,
    remote_mta: Option<String>,
    /// Handed to this appliance's mailboxes over LMTP (for the mail log).
    local: bool,
}

impl Attempter {
    pub fn new(
        config: Arc<Config>,
        directory: Arc<SnapshotWatcher>,
        spool: Arc<Spool>,
        door: Arc<QueueDoor>,
        remote: Arc<RemoteDelivery>,
    ) -> Attempter {
        Attempter {
            mail_log: Arc::new(MailLog::in_data_dir(&config.node.data_dir)),
            config,
            directory,
            spool,
            door,
            remote,
        }
    }

    /// Attempts the due recipients of `envelope`; returns it updated (and
    /// already saved, or removed from the spool when final).
    pub async fn run(&self, mut envelope: Envelope) -> Envelope {
        let Some(id) = QueueId::parse(&envelope.id) else {
            // Cannot happen for envelopes from the door or the spool (both
            // check ids); held rather than retried in a loop if it ever does.
            tracing::error!(queue_id = %envelope.id, "holding an envelope with a malformed id");
            envelope.held = true;
            return envelope;
        };
        let now = unix_now();
        let message = {
            let (spool, id) = (self.spool.clone(), id.clone());
            smol::unblock(move || spool.read_message(&id)).await
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(queue_id = %id, error = %e, "cannot read the queued message; will retry");
                let retry = self.config.queue.retry_initial.as_secs();
                for r in envelope.recipients.iter_mut().filter(|r| r.is_due(now)) {
                    r.deferred(e.to_string(), now, retry);
                }
                let (spool, copy) = (self.spool.clone(), envelope.clone());
                if let Err(e) = smol::unblock(move || spool.save_envelope(&id, &copy)).await {
                    tracing::warn!(queue_id = %envelope.id, error = %e, "cannot record delivery state");
                }
                return envelope;
            }
        };
        let mut failed = Vec::new();
        if now.saturating_sub(envelope.arrived_at) > self.config.queue.lifetime.as_secs() {
            self.give_up(&mut envelope, &mut failed);
        } else {
            self.deliver_due(&id, &mut envelope, &message, now, &mut failed)
                .await;
            self.maybe_delay_notice(&mut envelope, &message, now).await;
        }
        if !failed.is_empty() {
            send_dsn(
                &self.door,
                &self.config,
                &envelope,
                DsnKind::Failed,
                &failed,
                &message,
            )
            .await;
        }
        let (spool, copy) = (self.spool.clone(), envelope.clone());
        let finished = envelope.is_final();
        let persisted = smol::unblock(move || {
            if finished {
                spool.remove(&id).map(|()| id)
            } else {
                spool.save_envelope(&id, &copy).map(|()| id)
            }
        })
        .await;
        match persisted {
            Ok(id) if finished => {
                self.door.shadow().done(id.as_str());
                tracing::info!(queue_id = %id, "message finished; removed from the queue")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(queue_id = %envelope.id, error = %e, "cannot record delivery state")
            }
        }
        envelope
    }

    async fn deliver_due(
        &self,
        id: &QueueId,
        envelope: &mut Envelope,
        message: &[u8],
        now: u64,
        failed: &mut Vec<DsnRecipient>,
    ) {
        let snapshot = self.directory.current();
        let mut local = Vec::new();
        let mut remote: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut results = Vec::new();
        for (i, r) in envelope.recipients.iter().enumerate() {
            if !r.is_due(now) {
                continue;
            }
            match snapshot.route(&r.address) {
                RecipientRoute::Local => local.push(i),
                RecipientRoute::Remote => remote
                    .entry(domain_of(&r.address).to_ascii_lowercase())
                    .or_default()
                    .push(i),
                route => results.push(Result1 {
                    index: i,
                    outcome: DeliveryOutcome::Failed(format!(
                        "550 5.1.1 {}: no longer deliverable here ({route:?})",
                        r.address
                    )),
                    remote_mta: None,
                    local: false,
                }),
            }
        }
        self.record(id, envelope, results, now, failed).await;

        // The mailbox role never auto-replies to bulk mail (RFC 3834 §2);
        // it learns the lane from this control field, ours alone.
        let marked;
        let local_message = if envelope.lane == QueueLane::Bulk && !local.is_empty() {
            marked = [format!("{LANE}: bulk\r\n").as_bytes(), message].concat();
            marked.as_slice()
        } else {
            message
        };
        for chunk in local.chunks(LMTP_CHUNK) {
            let addresses: Vec<String> = chunk
                .iter()
                .map(|&i| envelope.recipients[i].address.clone())
                .collect();
            let tx = LmtpTransaction {
                sender: &envelope.sender,
                recipients: &addresses,
                body_8bit: envelope.body_8bit,
                smtputf8: envelope.smtputf8,
                message: local_message,
                queue_id: &envelope.id,
            };
            let outcomes = lmtp_client::deliver(
                self.config.engine.lmtp_target,
                &self.config.node.hostname,
                &tx,
            )
            .await;
            let results = chunk
                .iter()
                .zip(outcomes)
                .map(|(&index, outcome)| Result1 {
                    index,
                    outcome,
                    remote_mta: None,
                    local: true,
                })
                .collect();
            self.record(id, envelope, results, now, failed).await;
        }

        for (domain, indexes) in remote {
            let session = self.remote.begin(envelope.lane, &domain).await;
            let mut session = match session {
                Ok(session) => session,
                Err(route_failure) => {
                    let results = indexes
                        .iter()
                        .map(|&index| Result1 {
                            index,
                            outcome: route_failure.clone(),
                            remote_mta: None,
                            local: false,
                        })
                        .collect();
                    self.record(id, envelope, results, now, failed).await;
                    continue;
                }
            };
            for chunk in indexes.chunks(REMOTE_CHUNK) {
                let addresses: Vec<String> = chunk
                    .iter()
                    .map(|&i| envelope.recipients[i].address.clone())
                    .collect();
                let outcomes = session
                    .send(&envelope.sender, &addresses, message, envelope.smtputf8)
                    .await;
                let remote_mta = session.remote_mta();
                let results = chunk
                    .iter()
                    .zip(outcomes)
                    .map(|(&index, outcome)| Result1 {
                        index,
                        outcome,
                        remote_mta: remote_mta.clone(),
                        local: false,
                    })
                    .collect();
                self.record(id, envelope, results, now, failed).await;
            }
            session.finish().await;
        }
    }

    /// Applies results to the envelope, logs them, and saves the envelope.
    async fn record(
        &self,
        id: &QueueId,
        envelope: &mut Envelope,
        results: Vec<Result1>,
        now: u64,
        failed: &mut Vec<DsnRecipient>,
    ) {
        if results.is_empty() {
            return;
        }
        let retry = self.config.queue.retry_initial.as_secs();
        let mut changed = Vec::with_capacity(results.len());
        let mut logged = Vec::with_capacity(results.len());
        // The mail log says when each answer came, not when the attempt began.
        let answered = unix_now() as i64;
        for Result1 {
            index,
            outcome,
            remote_mta,
            local,
        } in results
        {
            let Some(r) = envelope.recipients.get_mut(index) else {
                continue;
            };
            r.remote_mta = remote_mta.clone();
            let relay = match (&remote_mta, local) {
                (Some(mta), _) => mta.clone(),
                (None, true) => "lmtp".to_string(),
                (None, false) => String::new(),
            };
            let (status, reply) = match &outcome {
                DeliveryOutcome::Delivered => (Outcome::Delivered, "ok".to_string()),
                DeliveryOutcome::Deferred(reason) => (Outcome::Deferred, reason.clone()),
                DeliveryOutcome::Failed(reason) => (Outcome::Bounced, reason.clone()),
            };
            counters::recipient_outcome(status);
            logged.push(MailLogEntry::new(
                answered,
                &envelope.id,
                &envelope.sender,
                &r.address,
                status_name(status),
                &relay,
                &reply,
            ));
            match outcome {
                DeliveryOutcome::Delivered => {
                    tracing::info!(queue_id = %id, recipient = %r.address, via = ?remote_mta, "delivered");
                    r.delivered();
                }
                DeliveryOutcome::Deferred(reason) => {
                    tracing::warn!(queue_id = %id, recipient = %r.address, reason = %reason,
                        attempts = r.attempts + 1, "delivery deferred");
                    r.deferred(reason, now, retry);
                }
                DeliveryOutcome::Failed(reason) => {
                    tracing::warn!(queue_id = %id, recipient = %r.address, reason = %reason,
                        "delivery failed permanently");
                    failed.push(DsnRecipient {
                        address: r.address.clone(),
                        status: dsn_status(&reason, '5'),
                        diagnostic: reason.clone(),
                        remote_mta,
                    });
                    r.failed(reason);
                }
            }
            changed.push((index, r.clone()));
        }
        self.door.shadow().progress(id.as_str(), &changed);
        if envelope.is_final() && failed.is_empty() {
            // Nothing is left to send and no bounce is due: `run` removes
            // the message next, and that removal (a synced unlink) is the
            // durable record. Logging first would cost a new file and two
            // syncs per delivered message for nothing; a crash before the
            // removal repeats these deliveries, as a crash before the log's
            // sync would.
            self.log(logged).await;
            return;
        }
        // Durable before the next chunk goes out (module invariant): a few
        // appended lines, not a rewrite of the whole envelope.
        let (spool, qid) = (self.spool.clone(), id.clone());
        if let Err(e) = smol::unblock(move || spool.append_outcomes(&qid, &changed)).await {
            tracing::warn!(queue_id = %id, error = %e, "cannot record delivery state");
        }
        self.log(logged).await;
    }

    /// Appends to the mail log; a failure is logged, never fatal.
    async fn log(&self, entries: Vec<MailLogEntry>) {
        let log = self.mail_log.clone();
        if let Err(e) = smol::unblock(move || log.append(&entries)).await {
            tracing::warn!(error = %e, "cannot write the mail log");
        }
    }

    fn give_up(&self, envelope: &mut Envelope, failed: &mut Vec<DsnRecipient>) {
        let lifetime = self.config.queue.lifetime.as_secs();
        let now = unix_now() as i64;
        let mut logged = Vec::new();
        for r in envelope
            .recipients
            .iter_mut()
            .filter(|r| r.state == RecipientState::Pending)
        {
            let last = r.last_error.clone().unwrap_or_default();
            tracing::warn!(queue_id = %envelope.id, recipient = %r.address, last_error = %last,
                "giving up: the message waited longer than the queue lifetime");
            let reason = format!(
                "4.4.7 gave up after {} hours in the queue; last error: {last}",
                lifetime / 3600
            );
            failed.push(DsnRecipient {
                address: r.address.clone(),
                status: "4.4.7".into(),
                diagnostic: reason.clone(),
                remote_mta: r.remote_mta.clone(),
            });
            counters::recipient_outcome(Outcome::Bounced);
            logged.push(MailLogEntry::new(
                now,
                &envelope.id,
                &envelope.sender,
                &r.address,
                status_name(Outcome::Bounced),
                r.remote_mta.as_deref().unwrap_or(""),
                &reason,
            ));
            r.failed(reason);
        }
        // Blocking, but only when a message expires (rare).
        if let Err(e) = self.mail_log.append(&logged) {
            tracing::warn!(error = %e, "cannot write the mail log");
        }
    }

    /// Tells the sender once when mail has waited past `delay_notice_after`.
    async fn maybe_delay_notice(&self, envelope: &mut Envelope, message: &[u8], now: u64) {
        let waited = now.saturating_sub(envelope.arrived_at);
        if envelope.delay_notified || waited < self.config.queue.delay_notice_after.as_secs() {
            return;
        }
        let delayed: Vec<DsnRecipient> = envelope
            .recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending && r.attempts > 0)
            .map(|r| {
                let reason = r.last_error.clone().unwrap_or_default();
                DsnRecipient {
                    address: r.address.clone(),
                    status: dsn_status(&reason, '4'),
                    diagnostic: reason,
                    remote_mta: r.remote_mta.clone(),
                }
            })
            .collect();
        if delayed.is_empty() {
            return;
        }
        envelope.delay_notified = true;
        let retry_until = envelope.arrived_at + self.config.queue.lifetime.as_secs();
        let kind = DsnKind::Delayed {
            retry_until: retry_until as i64,
        };
        send_dsn(&self.door, &self.config, envelope, kind, &delayed, message).await;
    }

    /// Writes the envelope to the spool (blocking; called from attempts and
    /// from admin commands).
    pub fn save(&self, envelope: &Envelope) -> Result<(), SpoolError> {
        match QueueId::parse(&envelope.id) {
            Some(id) => self.spool.save_envelope(&id, envelope),
            None => Ok(()),
        }
    }

    pub fn remove(&self, envelope: &Envelope) -> Result<(), SpoolError> {
        match QueueId::parse(&envelope.id) {
            Some(id) => {
                self.spool.remove(&id)?;
                self.door.shadow().done(id.as_str());
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// The mail log's word for an outcome.
fn status_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Deferred => "deferred",
        Outcome::Bounced => "bounced",
    }
}
