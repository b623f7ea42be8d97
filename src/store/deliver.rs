//! Local delivery into the store: the bytes stored once as a blob, one
//! `Deliver` op for every (mailbox, folder) of the delivery, one flush.
//!
//! Invariant: durable when a call returns Ok, and then every target got
//! the message or none did.

use super::op::{self, check_name, Op, SummaryFields};
use super::{now_secs, MessageId, Store, StoreError};

impl Store {
    /// Stores `raw` in `folder` (e.g. "INBOX") of mailbox `user` (a
    /// normalized address); durable when it returns Ok.
    pub fn deliver(&self, user: &str, folder: &str, raw: &[u8]) -> Result<MessageId, StoreError> {
        let ids = self.deliver_many(&[(user, folder)], raw)?;
        ids.into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("delivery produced no id".into()))
    }

    /// Stores `raw` once for every (mailbox, folder) in `targets`: one
    /// blob, one op for all of them (see `Op::Deliver`), one flush;
    /// durable when it returns Ok, and then either every target got the
    /// message or none did. Returns the message ids in target order.
    pub fn deliver_many(
        &self,
        targets: &[(&str, &str)],
        raw: &[u8],
    ) -> Result<Vec<MessageId>, StoreError> {
        self.deliver_for(targets, raw, None)
    }

    /// `deliver_many` for the engine's queue id `queue_ref`, remembered so
    /// a retry is recognised (`delivered_for`).
    pub fn deliver_for(
        &self,
        targets: &[(&str, &str)],
        raw: &[u8],
        queue_ref: Option<&str>,
    ) -> Result<Vec<MessageId>, StoreError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        if targets.len() > op::MAX_TARGETS {
            return Err(StoreError::InvalidOp(format!(
                "a delivery to {} mailboxes (at most {} at once)",
                targets.len(),
                op::MAX_TARGETS
            )));
        }
        for (user, folder) in targets {
            check_name("mailbox", user)?;
            check_name("folder", folder)?;
        }
        let header = crate::mime::summarize(raw);
        let summary = SummaryFields {
            from: header.from,
            subject: header.subject,
            date: header.date,
            thread: header.thread,
        };
        let received_at = now_secs();
        let owned: Vec<(String, String)> = targets
            .iter()
            .map(|(u, f)| (u.to_string(), f.to_string()))
            .collect();
        // Twice at most: the bytes may have been found stored, then lost
        // their last reference to a concurrent delete before our op raised
        // the count; the second `put` stores them again.
        let mut blob = self.blobs.put(raw)?;
        let mut w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let mut attempt = 0;
        let op = loop {
            attempt += 1;
            let result = self.apply_local(&mut w, |_| Op::Deliver {
                targets: owned.clone(),
                blob,
                size: raw.len() as u64,
                received_at,
                summary: summary.clone(),
                queue_ref: queue_ref.map(str::to_string),
            });
            match result {
                Ok(op) => break op,
                Err(StoreError::MissingBlob(_)) if attempt < 2 => {
                    blob = self.blobs.put(raw)?;
                }
                Err(e) => return Err(e),
            }
        };
        drop(w);
        // The metadata of every delivery becomes durable here (the writer
        // lock is free again, so other deliveries apply meanwhile, and
        // deliveries waiting at once share one flush that began after
        // their ops were applied).
        self.metadata_flush.sync()?;
        Ok(op.delivered_ids())
    }
}
