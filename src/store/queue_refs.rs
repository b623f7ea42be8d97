//! Which engine queue ids were delivered here, so a retried LMTP
//! transaction is not stored twice.
//!
//! The engine names its queue id on LMTP's MAIL command; the `Deliver` op
//! keeps it (`queue_ref`) and, applied, writes one key `queue id \0 op log
//! key` (empty value) per op. A retry can happen when the engine died after
//! our `250` but before it recorded the outcome, or when the peer's engine
//! takes over a message whose origin had delivered it: since the op
//! replicates, the peer knows too. `delivered_for` names the mailboxes a
//! queue id already reached (the targets of those ops, read from the log).
//!
//! Invariants: one key per op, written in the op's transaction on every
//! node that applies it; keys older than `KEEP` (queue ids begin with their
//! arrival time in hex) are pruned, long after the engine gives up a message.
//!
//! Reads untrusted input: no (queue ids were checked as names by `op`).

use std::collections::HashSet;

use sled::transaction::TransactionalTree;

use super::id::OpId;
use super::op::{Op, ReplicationOp};
use super::state::{Tx, TxResult};
use super::{Store, StoreError};

/// How long a queue id is remembered: past the engine's message lifetime.
pub const KEEP_SECS: u64 = 30 * 86_400;

fn prefix(queue_ref: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(queue_ref.len() + 1);
    k.extend_from_slice(queue_ref.as_bytes());
    k.push(0);
    k
}

/// Records that op `id` delivered for `queue_ref` (inside its transaction).
pub fn record(tx: &Tx, queue_ref: &str, id: &OpId) -> TxResult<()> {
    let refs: &TransactionalTree = tx.queue_refs;
    let mut key = prefix(queue_ref);
    key.extend_from_slice(&id.log_key());
    refs.insert(key, &[] as &[u8])?;
    Ok(())
}

impl Store {
    /// The mailboxes a delivery with the engine's `queue_ref` already
    /// reached, on this node or (replicated) on the peer.
    pub fn delivered_for(&self, queue_ref: &str) -> Result<HashSet<String>, StoreError> {
        let start = prefix(queue_ref);
        let mut mailboxes = HashSet::new();
        for entry in self.trees.queue_refs.scan_prefix(&start) {
            let (key, _) = entry?;
            let Some(bytes) = self.trees.oplog.get(&key[start.len()..])? else {
                continue;
            };
            if let Op::Deliver { targets, .. } = ReplicationOp::decode(&bytes)?.op {
                mailboxes.extend(targets.into_iter().map(|(mailbox, _)| mailbox));
            }
        }
        Ok(mailboxes)
    }

    /// Forgets queue ids that arrived more than `KEEP_SECS` before
    /// `now_millis`. Returns how many keys went.
    pub fn prune_queue_refs(&self, now_millis: u64) -> Result<usize, StoreError> {
        let cutoff = now_millis.saturating_sub(KEEP_SECS * 1000) & 0xffff_ffff_ffff;
        // Queue ids start with 12 hex digits of their arrival in ms.
        let end = format!("{cutoff:012x}");
        let mut pruned = 0;
        for entry in self.trees.queue_refs.range(..end.as_bytes()) {
            let (key, _) = entry?;
            self.trees.queue_refs.remove(key)?;
            pruned += 1;
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn a_queue_id_remembers_the_mailboxes_it_reached() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "node-a").unwrap();
        let raw = b"Subject: hi\r\n\r\nhi\r\n";
        let queue_id = "018f00000000000aabcdef";
        store
            .deliver_for(
                &[("kim@x", "INBOX"), ("lee@x", "INBOX")],
                raw,
                Some(queue_id),
            )
            .unwrap();
        store.deliver_many(&[("park@x", "INBOX")], raw).unwrap();
        let reached = store.delivered_for(queue_id).unwrap();
        assert_eq!(reached.len(), 2);
        assert!(reached.contains("kim@x") && reached.contains("lee@x"));
        assert!(store
            .delivered_for("018f00000000000zzzzzzz")
            .unwrap()
            .is_empty());

        // Replicated: the peer knows the queue id too.
        let dir_b = tempfile::tempdir().unwrap();
        let b = Store::open(dir_b.path(), "node-b").unwrap();
        for op in store.ops_since("node-a", 0, 100).unwrap() {
            if let crate::store::Op::Deliver { .. } = &op.op {
                b.put_blob(raw).unwrap();
            }
            b.apply_remote(&op).unwrap();
        }
        assert_eq!(b.delivered_for(queue_id).unwrap(), reached);

        // Far past KEEP_SECS the id is forgotten.
        let arrival = u64::from_str_radix(&queue_id[..12], 16).unwrap();
        let later = arrival + super::KEEP_SECS * 1000 + 1;
        assert_eq!(store.prune_queue_refs(later).unwrap(), 1);
        assert!(store.delivered_for(queue_id).unwrap().is_empty());
    }
}
