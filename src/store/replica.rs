//! What replication reads from the store besides `ops_since` and
//! `apply_remote`: which origins the log holds and how far, the bytes a
//! `Deliver` names, and a digest of the whole state for `pair verify`.
//!
//! The digest covers what users see and what must converge: every message
//! (id, mailbox, folder, blob, size), every tombstone, flag, user folder,
//! directory record and login, in key order, so two nodes that applied the
//! same ops in any order have the same digest. Physical layout (segments,
//! disks, garbage) and derived indexes are not part of it.

use super::blob::BlobId;
use super::id::{self, MessageId};
use super::state::{self, FlagsRecord};
use super::{Store, StoreError};

impl Store {
    /// Every origin with ops in the log (this node's included).
    pub fn origins(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut start: Vec<u8> = Vec::new();
        while let Some(entry) = self.trees.oplog.range(start.clone()..).next() {
            let (key, _) = entry?;
            let end = key
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| StoreError::Corrupt("op log key without origin".into()))?;
            let origin = String::from_utf8(key[..end].to_vec())
                .map_err(|_| StoreError::Corrupt("op log origin is not text".into()))?;
            // The next origin sorts after every key of this one.
            start = key[..end].to_vec();
            start.push(1);
            out.push(origin);
        }
        // Origins a snapshot seeded this store with, whose ops since may
        // not have arrived (`snapshot.rs`).
        for origin in self.log_base()?.into_keys() {
            if !out.contains(&origin) {
                out.push(origin);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The highest sequence number of `origin` applied here (0 if none).
    /// Ops of one origin are applied in order, so all below it are here
    /// (in the log, or in the snapshot this store was seeded with: its
    /// log base counts as applied).
    pub fn last_seq(&self, origin: &str) -> Result<u64, StoreError> {
        let logged = match self
            .trees
            .oplog
            .scan_prefix(id::origin_prefix(origin))
            .next_back()
        {
            Some(entry) => super::ReplicationOp::decode(&entry?.1)?.id.seq,
            None => 0,
        };
        let base = self.log_base()?.get(origin).map_or(0, |p| p.last);
        Ok(logged.max(base))
    }

    /// The highest sequence number of this node's own ops that is on
    /// disk: flushes first. Replication ships no own op above it, since an
    /// op lost in a crash here would have its number used again for a
    /// different op, which the peer would then ignore.
    pub fn durable_own_seq(&self) -> Result<u64, StoreError> {
        let seq = self.last_seq(&self.node)?;
        self.db.flush()?;
        Ok(seq)
    }

    /// The bytes of blob `id`, if stored here.
    pub fn blob(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        self.blobs.get(id)
    }

    /// True when `id` was deleted here (a tombstone exists).
    pub fn is_deleted(&self, id: &MessageId) -> Result<bool, StoreError> {
        Ok(self.trees.tombstones.contains_key(id.as_bytes())?)
    }

    /// (hex digest, messages) of the state users see; see the module comment.
    pub fn digest(&self) -> Result<(String, u64), StoreError> {
        let mut hasher = blake3::Hasher::new();
        let mut messages = 0;
        for entry in super::message_rows::all(&self.trees.messages, &self.trees.deliveries) {
            let (id, rec) = entry?;
            let flags = match self.trees.flags.get(id.as_bytes())? {
                Some(v) => Some(state::decode::<FlagsRecord>(&v)?.seen),
                None => None,
            };
            hasher.update(id.as_bytes());
            hasher.update(&[0]);
            hasher.update(rec.mailbox.as_bytes());
            hasher.update(&[0]);
            hasher.update(rec.folder.as_bytes());
            hasher.update(&[0]);
            hasher.update(&rec.blob.0);
            hasher.update(&rec.size.to_be_bytes());
            hasher.update(&[u8::from(flags.unwrap_or(false))]);
            messages += 1;
        }
        hasher.update(b"tombstones");
        for entry in self.trees.tombstones.iter() {
            let (key, _) = entry?;
            hasher.update(&key);
            hasher.update(&[0]);
        }
        // Every flag, user folder (name, place, tombstone), directory record
        // and login carries its last writer's stamp, so converged nodes
        // hold byte-identical records here.
        for (name, tree) in [
            (&b"flags"[..], &self.trees.flags),
            (&b"folder_defs"[..], &self.trees.folder_defs),
            (&b"records"[..], &self.trees.records),
        ] {
            hasher.update(name);
            for entry in tree.iter() {
                let (key, value) = entry?;
                hasher.update(&(key.len() as u64).to_be_bytes());
                hasher.update(&key);
                hasher.update(&(value.len() as u64).to_be_bytes());
                hasher.update(&value);
            }
        }
        Ok((hasher.finalize().to_hex().to_string(), messages))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Op, Store, StoreError};

    #[test]
    fn origins_positions_and_digests_follow_the_log() -> Result<(), StoreError> {
        let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let a = Store::open(da.path(), "node-a")?;
        let b = Store::open(db.path(), "node-b")?;
        assert!(a.origins()?.is_empty());
        let m = a.deliver("kim@x", "INBOX", b"Subject: x\r\n\r\nhi\r\n")?;
        a.set_seen("kim@x", &m, true)?;
        b.deliver("lee@x", "INBOX", b"Subject: y\r\n\r\nyo\r\n")?;
        assert_eq!(a.last_seq("node-a")?, 2);
        assert_eq!(a.last_seq("node-b")?, 0);
        assert_ne!(a.digest()?, b.digest()?);
        // Exchange both logs, in different orders: same digest.
        for (from, to) in [(&a, &b), (&b, &a)] {
            for origin in from.origins()? {
                for op in from.ops_since(&origin, to.last_seq(&origin)?, 100)? {
                    if let Op::Deliver { blob, .. } = &op.op {
                        if let Some(bytes) = from.blob(blob)? {
                            to.put_blob(&bytes)?;
                        }
                    }
                    to.apply_remote(&op)?;
                }
            }
        }
        assert_eq!(
            a.origins()?,
            vec!["node-a".to_string(), "node-b".to_string()]
        );
        assert_eq!(a.digest()?, b.digest()?);
        assert_eq!(a.digest()?.1, 2);
        Ok(())
    }
}
