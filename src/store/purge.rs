//! Auto-purge: messages that have been in a folder (Trash, Junk) longer
//! than a given time are deleted for good.
//!
//! Owns nothing: it reads the listings and logs ordinary `Expunge` ops, so
//! a purge replicates like a user's delete, and both nodes of a pair
//! purging the same message is harmless (the tombstone is the same).
//!
//! "In the folder since": the HLC time of the message's last `Move`, or of
//! its delivery when it never moved (mail filed into Junk on arrival).

use super::id::MessageId;
use super::state::{self, MessageRecord};
use super::{Store, StoreError};

/// Most messages expunged per flush.
const BATCH: usize = 500;

impl Store {
    /// Deletes for good every message that has been in `folder` (of any
    /// mailbox) since before `cutoff_ms` (Unix milliseconds). Returns how
    /// many were deleted.
    pub fn purge_folder(&self, folder: &str, cutoff_ms: u64) -> Result<usize, StoreError> {
        let mut mailboxes = Vec::new();
        for entry in self.trees.folder_stats.iter() {
            let (key, value) = entry?;
            let Some(split) = key.iter().position(|b| *b == 0) else {
                continue;
            };
            let (total, _) = state::decode_stats(Some(&value));
            if &key[split + 1..] == folder.as_bytes() && total > 0 {
                mailboxes.push(String::from_utf8_lossy(&key[..split]).into_owned());
            }
        }
        let mut purged = 0;
        for mailbox in mailboxes {
            let mut old: Vec<MessageId> = Vec::new();
            for id in self.folder_message_ids(&mailbox, folder)? {
                let Some(rec) = self.record(&id)? else {
                    continue;
                };
                if in_folder_since(&rec) < cutoff_ms {
                    old.push(id);
                }
            }
            for chunk in old.chunks(BATCH) {
                purged += self.expunge_messages(&mailbox, chunk)?;
            }
        }
        Ok(purged)
    }
}

fn in_folder_since(rec: &MessageRecord) -> u64 {
    match &rec.moved {
        Some((ts, _)) => ts.ms,
        None => rec.ts.ms,
    }
}
