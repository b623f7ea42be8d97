//! Conversations (threads): which messages of a mailbox answer each other.
//!
//! A message's conversation is named by its root: the first message id of
//! its `References:` (else `In-Reply-To:`, else its own `Message-ID:`),
//! found once at delivery by `mime::summarize` and kept in the delivery's
//! row. Since the root comes from the message alone, no lookup of earlier
//! mail is needed at delivery, both nodes of a pair agree, and mail that
//! arrives out of order still lands in the right conversation. (A reply
//! whose client dropped `References:` and `In-Reply-To:` starts its own
//! conversation; grouping by subject is deliberately not done: "공지" or
//! "Question" would join strangers.)
//!
//! Index `threads`: `mailbox \0 root hash (8 bytes) \0 message id` -> empty,
//! across all folders of the mailbox (a reply in Sent belongs with the
//! mail in INBOX it answers). Deliveries to more than
//! `THREAD_TARGETS_MAX` mailboxes (announcements) are not indexed: nobody
//! holds a conversation with a notice to every student, and indexing them
//! would cost a key per recipient.
//!
//! **Invariant:** a message is in the index exactly when its delivery was
//! marked `threaded` (fsck checks it); the entry is written and removed in
//! the op's transaction.

use super::id::MessageId;
use super::message_rows::MessageRecord;
use super::state::{Tx, TxResult};
use super::{MessageSummary, Store, StoreError};

/// Largest delivery whose messages are indexed by conversation.
pub const THREAD_TARGETS_MAX: usize = 50;
/// Most messages one conversation lists.
pub const MAX_LISTED: usize = 200;

/// Should a delivery of `targets` mailboxes with this root be indexed?
pub fn is_threaded(targets: usize, root: Option<&str>) -> bool {
    targets <= THREAD_TARGETS_MAX && root.is_some()
}

/// The 8 bytes a conversation's root is known by in the indexes (here and
/// in `thread_heads`); a collision only makes two conversations share
/// index keys, and readers compare the root itself.
pub fn root_hash(root: &str) -> [u8; 8] {
    let mut h = [0u8; 8];
    h.copy_from_slice(&blake3::hash(root.as_bytes()).as_bytes()[..8]);
    h
}

/// `mailbox \0 hash(root) \0`: one conversation's entries.
fn prefix(mailbox: &str, root: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(mailbox.len() + 10);
    k.extend_from_slice(mailbox.as_bytes());
    k.push(0);
    k.extend_from_slice(&root_hash(root));
    k.push(0);
    k
}

/// The index key of a threaded message (None if it is not threaded).
pub fn key(rec: &MessageRecord, id: &MessageId) -> Option<Vec<u8>> {
    let root = rec.summary.thread.as_deref().filter(|_| rec.threaded)?;
    let mut k = prefix(&rec.mailbox, root);
    k.extend_from_slice(id.as_bytes());
    Some(k)
}

/// Adds a new message to its conversation.
pub fn tx_add(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    if let Some(k) = key(rec, id) {
        tx.threads.insert(k, &[] as &[u8])?;
    }
    Ok(())
}

/// Takes a deleted message out of its conversation.
pub fn tx_remove(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    if let Some(k) = key(rec, id) {
        tx.threads.remove(k)?;
    }
    Ok(())
}

impl Store {
    /// The messages of `user`'s mailbox in the same conversation as `id`
    /// (itself included), oldest first, at most `MAX_LISTED`. Empty if
    /// `id` is not `user`'s; just `id` if it has no conversation index.
    pub fn conversation(
        &self,
        user: &str,
        id: &MessageId,
    ) -> Result<Vec<MessageSummary>, StoreError> {
        let Some(rec) = self.record(id)?.filter(|r| r.mailbox == user) else {
            return Ok(Vec::new());
        };
        let Some(root) = rec.summary.thread.as_deref().filter(|_| rec.threaded) else {
            return Ok(vec![self.summary(id.clone(), &rec)?]);
        };
        let p = prefix(user, root);
        let mut out = Vec::new();
        for entry in self.trees.threads.scan_prefix(&p).take(MAX_LISTED) {
            let (k, _) = entry?;
            let other: MessageId = std::str::from_utf8(&k[p.len()..])
                .map_err(|_| StoreError::Corrupt("conversation entry".into()))?
                .parse()?;
            // Same 8-byte hash, other root: not this conversation.
            if let Some(r) = self.record(&other)? {
                if r.summary.thread.as_deref() == Some(root) {
                    out.push(self.summary(other, &r)?);
                }
            }
        }
        out.sort_by_key(|m| (m.date, m.received_at));
        Ok(out)
    }

    /// How many messages of `user`'s mailbox are in each of these
    /// conversations (`MessageSummary::conversation`; 1 for a message
    /// outside the index), for the message list: the summaries a page
    /// already read, so no record is read again. Counts stop at
    /// `MAX_LISTED`.
    pub fn conversation_sizes(&self, user: &str, messages: &[MessageSummary]) -> Vec<usize> {
        messages
            .iter()
            .map(|m| match &m.conversation {
                Some(root) => self
                    .trees
                    .threads
                    .scan_prefix(prefix(user, root))
                    .take(MAX_LISTED)
                    .count()
                    .max(1),
                None => 1,
            })
            .collect()
    }
}
