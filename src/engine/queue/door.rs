//! The one door into the queue (STYLE.md: one door for new mail).
//!
//! SMTP, delivery status notifications, and later webmail compose, bulk mail
//! and migration all enter the queue through `QueueDoor::submit`: it decides
//! the lane, makes the message durable in the spool, and announces it to the
//! scheduler. It also applies users' forwarding: a recipient who forwards
//! is replaced by the forward address (and kept when they keep a copy),
//! the way an alias expands, so forwarded mail takes the same lanes,
//! retries and bounces as any other (`DirectorySnapshot::expand_forwards`).
//!
//! Invariant: `submit` returns `Ok` only after the message and its envelope
//! are fsynced (`Spool::accept`) and, with a peer, after the peer's engine
//! holds its shadow copy or `[pair] shadow_wait` passed (`engine::shadow`);
//! a caller may acknowledge the message then, and not before.

use std::sync::Arc;

use smol::channel::Sender;

use super::envelope::{Envelope, Recipient};
use super::lane::{classify, QueueLane};
use super::{unix_now, QueueId, Spool, SpoolError};
use crate::config::Config;
use crate::directory::snapshot::SnapshotWatcher;
use crate::engine::shadow::{Shadow, ShadowLink};

/// A message about to enter the queue.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Reverse path; empty for the null sender `<>` (bounces).
    pub sender: String,
    pub recipients: Vec<String>,
    pub body_8bit: bool,
    pub smtputf8: bool,
    /// The login that submitted it, if any.
    pub authenticated: Option<String>,
    /// An explicit lane (bulk mail from the console); `None` lets the rules decide.
    pub lane: Option<QueueLane>,
}

pub struct QueueDoor {
    config: Arc<Config>,
    spool: Arc<Spool>,
    announce: Sender<Envelope>,
    directory: Arc<SnapshotWatcher>,
    shadow: Arc<ShadowLink>,
}

impl QueueDoor {
    pub fn new(
        config: Arc<Config>,
        spool: Arc<Spool>,
        announce: Sender<Envelope>,
        directory: Arc<SnapshotWatcher>,
        shadow: Arc<ShadowLink>,
    ) -> QueueDoor {
        QueueDoor {
            config,
            spool,
            announce,
            directory,
            shadow,
        }
    }

    /// The link to the peer engine (attempts report progress through it).
    pub fn shadow(&self) -> &ShadowLink {
        &self.shadow
    }

    /// Queues `message` under `id` (chosen by the caller, who may have
    /// written it into a Received: header). Durable when it returns `Ok`.
    pub async fn submit(
        &self,
        id: QueueId,
        draft: Draft,
        message: Vec<u8>,
    ) -> Result<Envelope, SpoolError> {
        let now = unix_now();
        let recipients = self.directory.current().expand_forwards(&draft.recipients);
        if recipients != draft.recipients {
            tracing::info!(queue_id = %id, given = ?draft.recipients, expanded = ?recipients,
                "recipients expanded by users' forwarding");
        }
        let lane = classify(
            &self.config.queue,
            &draft.sender,
            draft.authenticated.as_deref(),
            recipients.len(),
            draft.lane,
        );
        let envelope = Envelope {
            id: id.to_string(),
            sender: draft.sender,
            recipients: recipients
                .into_iter()
                .map(|r| Recipient::new(r, now))
                .collect(),
            arrived_at: now,
            size: message.len() as u64,
            body_8bit: draft.body_8bit,
            smtputf8: draft.smtputf8,
            authenticated: draft.authenticated,
            lane,
            held: false,
            delay_notified: false,
        };
        let spool = self.spool.clone();
        let stored = envelope.clone();
        let file = smol::unblock(move || spool.accept(&id, &stored, &message)).await?;
        match self.shadow.hold(&envelope.id, file).await {
            Shadow::Held | Shadow::Unpaired => {}
            Shadow::Alone(why) => {
                tracing::info!(queue_id = %envelope.id, reason = why,
                    "accepted without a shadow copy on the peer")
            }
        }
        if self.announce.try_send(envelope.clone()).is_err() {
            // Still durable; the scheduler finds it in the spool on its next start.
            tracing::warn!(queue_id = %envelope.id, "queue scheduler not listening; message waits for a restart");
        }
        Ok(envelope)
    }
}
