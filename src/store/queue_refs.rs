//! Which engine queue ids were delivered to which mailbox, so that no
//! mailbox keeps two copies of one accepted message.
//!
//! The engine names its queue id on LMTP's MAIL command; the `Deliver` op
//! keeps it (`queue_ref`) and, applied, claims one key `queue id \0
//! mailbox` per target, whose value is the message id of the copy that
//! mailbox keeps. Two copies can meet when the engine died after our `250`
//! but before it recorded the outcome (it retries), or when both nodes
//! delivered one message (the peer took it over, or a partition): the
//! copy with the smaller op id wins on every node, whatever order the ops
//! arrive in, and the other is deleted (a tombstone, like an expunge).
//! `delivered_for` names the mailboxes a queue id already reached, so a
//! retry does not even store the bytes again.
//!
//! Invariants: claims are written in the op's transaction on every node
//! that applies it; the winner is a pure function of the two ids; keys
//! older than `KEEP_SECS` (queue ids begin with their arrival time in hex)
//! are pruned, long after the engine gives up a message.
//!
//! Reads untrusted input: no (queue ids were checked as names by `op`).

use std::collections::HashSet;

use super::id::MessageId;
use super::op::ReplicationOp;
use super::state::{self, Tx, TxResult};
use super::{Store, StoreError};

/// How long a queue id is remembered: past the engine's message lifetime.
pub const KEEP_SECS: u64 = 30 * 86_400;

fn prefix(queue_ref: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(queue_ref.len() + 1);
    k.extend_from_slice(queue_ref.as_bytes());
    k.push(0);
    k
}

fn key(queue_ref: &str, mailbox: &str) -> Vec<u8> {
    let mut k = prefix(queue_ref);
    k.extend_from_slice(mailbox.as_bytes());
    k
}

/// What a delivering target must do after its claim.
pub enum Claim {
    /// Deliver it.
    Deliver,
    /// Deliver it, then delete this copy delivered before (after, so the
    /// bytes they share keep a reference throughout).
    DeliverReplacing(MessageId),
    /// Another copy wins: the target was recorded deleted; skip it.
    Lost,
}

/// Claims `mailbox`'s copy of `queue_ref` for `message` (inside the
/// delivering op's transaction).
pub fn claim(
    tx: &Tx,
    op: &ReplicationOp,
    queue_ref: &str,
    mailbox: &str,
    message: &MessageId,
) -> TxResult<Claim> {
    let key = key(queue_ref, mailbox);
    let other = match tx.queue_refs.get(&key)? {
        None => None,
        Some(v) => Some(claimant(&v).or_else(state::abort)?),
    };
    match other {
        Some(other) if other == *message => Ok(Claim::Deliver),
        Some(other) if !first(message, &other)? => {
            tx.tombstones.insert(
                message.as_bytes(),
                state::encode(&op.ts).or_else(state::abort)?,
            )?;
            Ok(Claim::Lost)
        }
        other => {
            tx.queue_refs.insert(key, message.as_bytes())?;
            Ok(other.map_or(Claim::Deliver, Claim::DeliverReplacing))
        }
    }
}

/// The copies already claimed for `targets` of a delivery of `queue_ref`
/// (read before the op's transaction: deleting one touches indexes that
/// are planned ahead, `thread_heads::plan`).
pub fn claimed(
    trees: &super::state::Trees,
    queue_ref: &str,
    targets: &[(String, String)],
) -> Result<Vec<MessageId>, StoreError> {
    let mut ids = Vec::new();
    for (mailbox, _) in targets {
        if let Some(v) = trees.queue_refs.get(key(queue_ref, mailbox))? {
            ids.push(claimant(&v)?);
        }
    }
    Ok(ids)
}

/// The message id a claim's value names.
fn claimant(value: &[u8]) -> Result<MessageId, StoreError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Corrupt("a queue id claim names no message".into()))
}

/// Whether `a` wins over `b`: the smaller op id, the same on every node.
fn first(a: &MessageId, b: &MessageId) -> TxResult<bool> {
    match (a.op_id(), b.op_id()) {
        (Ok(a), Ok(b)) => Ok(a < b),
        (Err(e), _) | (_, Err(e)) => state::abort(e),
    }
}

impl Store {
    /// The mailboxes a delivery with the engine's `queue_ref` already
    /// reached, on this node or (replicated) on the peer.
    pub fn delivered_for(&self, queue_ref: &str) -> Result<HashSet<String>, StoreError> {
        let start = prefix(queue_ref);
        let mut mailboxes = HashSet::new();
        for entry in self.trees.queue_refs.scan_prefix(&start) {
            let (key, _) = entry?;
            if let Ok(mailbox) = std::str::from_utf8(&key[start.len()..]) {
                mailboxes.insert(mailbox.to_string());
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
        assert_eq!(store.prune_queue_refs(later).unwrap(), 2);
        assert!(store.delivered_for(queue_id).unwrap().is_empty());
    }

    #[test]
    fn two_nodes_delivering_one_queue_id_keep_one_copy_whatever_the_order() {
        let raw = b"Message-ID: <once@x.test>\r\nSubject: once\r\n\r\nonce\r\n";
        let queue_id = "018f00000000000aabcdef";
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Store::open(da.path(), "node-a").unwrap();
        let b = Store::open(db.path(), "node-b").unwrap();
        // Both deliver it (a takeover, or a partition), each to two mailboxes.
        let targets = [("kim@x", "INBOX"), ("lee@x", "INBOX")];
        a.deliver_for(&targets, raw, Some(queue_id)).unwrap();
        b.deliver_for(&targets[..1], raw, Some(queue_id)).unwrap();
        let ship = |from: &Store, origin: &str, to: &Store| {
            for op in from.ops_since(origin, 0, 100).unwrap() {
                to.put_blob(raw).unwrap();
                to.apply_remote(&op).unwrap();
            }
        };
        ship(&a, "node-a", &b); // B: its own copy first, then A's
        ship(&b, "node-b", &a); // A: its own copy first, then B's
        for store in [&a, &b] {
            for mailbox in ["kim@x", "lee@x"] {
                let page = store.list(mailbox, "INBOX", 0, 10).unwrap();
                assert_eq!(page.total, 1, "{mailbox} keeps one copy");
                assert!(
                    page.messages[0].id.to_string().starts_with("node-a."),
                    "the smaller op id wins everywhere"
                );
            }
        }
        assert_eq!(a.digest().unwrap(), b.digest().unwrap());
        for store in [&a, &b] {
            let report = store.fsck(false).unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems);
        }
    }
}
