//! Seeding a new or wiped pair node (R3): a consistent copy of this
//! store's state with the version vector it reflects (`take_snapshot`),
//! and installing such a copy into an empty store (`begin_snapshot_install`),
//! after which the ordinary puller fetches the log tail past the vector.
//!
//! What a snapshot holds: every sled tree of the store except those in
//! `NOT_SHIPPED` (the op log, the blob index, segment and disk records,
//! and `meta`, which holds this store's identity and bookkeeping), copied
//! key by key: the state trees (`messages`, `deliveries`, `flags`,
//! `tombstones`, `folder_defs`, `records`, `queue_refs`, ...) and the
//! derived ones (listing, counts, usage, sort, conversation indexes) alike,
//! so the receiver needs no rebuild and a tree added later travels without
//! a change here. Then every indexed blob with its refcount, and the
//! highest HLC timestamp.
//!
//! Consistency: every op is one sled transaction taken under the writer
//! lock, and so are the other writers of these trees (the sort index
//! build, fsck). `take_snapshot` holds the writer lock while it flushes the
//! database (so the peer never holds an op we could lose in a crash and
//! number again) and copies the trees into the caller's file, so the copy
//! is exactly the state after the ops of the vector, no more, no less. The
//! one writer outside the lock is the pruning of queue ids older than 30
//! days, which only decides whether a stale key is there. The lock is held
//! only for the metadata; the blobs stream afterwards. They are immutable,
//! and the snapshot keeps the blob store's maintenance lock
//! (`pin_segments`) until it is dropped, so no compaction removes a record
//! the snapshot names: a message deleted after the copy (its `Expunge` is
//! in the tail) still has its bytes at the recorded place.
//!
//! Installing: only into a store without ops or log base (or one whose
//! earlier install was cut short). A `snapshot_seeding` marker in `meta` is
//! written and flushed first and removed last, after the log base and a
//! flush; a store holding the marker is reset and seeded again (or emptied
//! with `discard_partial_snapshot`). The whole install holds the writer
//! lock, so no local op interleaves; it leaves the writer's next sequence
//! number past the vector's position for this node, so a wiped node never
//! reuses one of its old numbers.
//!
//! The log base (`meta` `log_base`): per origin, the last sequence number
//! the snapshot reflected and the next free one. `last_seq` and `origins`
//! count it, so the puller resumes past it; `ops_since` below it finds only
//! the tail (the peer asks only past what it has, which is at least the
//! base, since the base came from its own log).
//!
//! Untrusted input: the installer's tree names (only our own trees are
//! written), entry payloads (lengths checked) and the vector's origins
//! (node names checked) come from the peer.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::MutexGuard;

use serde::{Deserialize, Serialize};

use super::blob::{BlobId, BlobLocation};
use super::hlc::HlcTimestamp;
use super::id::{self, is_valid_node_name};
use super::state::{self, HLC_HIGH};
use super::{OpWriter, ReplicationOp, Store, StoreError};

/// Trees that describe this store, not the mail: never shipped, never
/// overwritten by an install.
const NOT_SHIPPED: [&str; 6] = [
    "oplog",
    "blobs",
    "segments",
    "disks",
    "meta",
    "__sled__default",
];
/// In `meta` while an install is under way: the peer's name.
const SEEDING: &[u8] = b"snapshot_seeding";
/// In `meta` once seeded: JSON [`VersionVector`].
const LOG_BASE: &[u8] = b"log_base";
/// Longest key or value accepted in an entry payload.
const MAX_ENTRY: usize = 64 * 1024 * 1024;

/// How far one origin's log is reflected by a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    /// Sequence number of the origin's last op (what `last_seq` says).
    pub last: u64,
    /// The next number the origin may use (a `Deliver` takes one per
    /// target, so this can be past `last + 1`).
    pub next: u64,
}

/// Per origin, the position a snapshot reflects.
pub type VersionVector = BTreeMap<String, LogPosition>;

/// One record of a snapshot file as `take_snapshot` writes it.
#[derive(Debug, PartialEq, Eq)]
pub enum SnapshotRecord {
    /// The entries that follow belong to this tree.
    Tree(String),
    Entry(Vec<u8>, Vec<u8>),
    /// A blob live messages name, where it is and its refcount.
    Blob(BlobId, BlobLocation),
}

/// A snapshot written out; holds the segments in place until dropped.
pub struct SnapshotTaken<'a> {
    store: &'a Store,
    _pin: MutexGuard<'a, ()>,
    pub base: VersionVector,
    pub hlc_high: HlcTimestamp,
    pub trees: Vec<String>,
    pub messages: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

impl SnapshotTaken<'_> {
    /// The bytes of a blob the snapshot named, at the place it recorded.
    pub fn blob(&self, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>, StoreError> {
        self.store
            .blobs
            .read_pinned(id, loc)?
            .ok_or_else(|| StoreError::MissingBlob(String::from(*id)))
    }
}

/// The trees of `db` a snapshot carries, by name.
fn shipped_trees(db: &sled::Db) -> Vec<String> {
    db.tree_names()
        .into_iter()
        .filter_map(|n| String::from_utf8(n.to_vec()).ok())
        .filter(|n| !NOT_SHIPPED.contains(&n.as_str()))
        .collect()
}

fn write_len(out: &mut impl Write, bytes: &[u8]) -> Result<(), StoreError> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| StoreError::Corrupt("record too large for a snapshot".into()))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)?;
    Ok(())
}

/// One key and its value, borrowed from a payload.
pub type Entry<'a> = (&'a [u8], &'a [u8]);

/// Appends one key/value to an entry payload (`decode_entries` reads it).
pub fn encode_entry(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
    write_len(buf, key)?;
    write_len(buf, value)
}

/// The key/value pairs of a payload made by `encode_entry`.
pub fn decode_entries(mut payload: &[u8]) -> Result<Vec<Entry<'_>>, StoreError> {
    fn take<'p>(p: &mut &'p [u8]) -> Result<&'p [u8], StoreError> {
        let bad = || StoreError::InvalidOp("snapshot entries are cut short".into());
        let (len, rest) = p.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_ENTRY || len > rest.len() {
            return Err(bad());
        }
        let (bytes, rest) = rest.split_at(len);
        *p = rest;
        Ok(bytes)
    }
    let mut out = Vec::new();
    while !payload.is_empty() {
        let key = take(&mut payload)?;
        let value = take(&mut payload)?;
        out.push((key, value));
    }
    Ok(out)
}

/// Reads the next record of a snapshot file (None at its end).
pub fn read_record(r: &mut impl Read) -> Result<Option<SnapshotRecord>, StoreError> {
    let mut tag = [0u8; 1];
    match r.read_exact(&mut tag) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let read_bytes = |r: &mut dyn Read| -> Result<Vec<u8>, StoreError> {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let mut bytes = vec![0u8; u32::from_be_bytes(len) as usize];
        r.read_exact(&mut bytes)?;
        Ok(bytes)
    };
    match tag[0] {
        b'T' => {
            let name = String::from_utf8(read_bytes(r)?)
                .map_err(|_| StoreError::Corrupt("snapshot tree name".into()))?;
            Ok(Some(SnapshotRecord::Tree(name)))
        }
        b'E' => {
            let key = read_bytes(r)?;
            let value = read_bytes(r)?;
            Ok(Some(SnapshotRecord::Entry(key, value)))
        }
        b'B' => {
            let mut id = [0u8; 32];
            r.read_exact(&mut id)?;
            let mut loc = [0u8; 28];
            r.read_exact(&mut loc)?;
            Ok(Some(SnapshotRecord::Blob(
                BlobId(id),
                BlobLocation::decode(&loc)?,
            )))
        }
        other => Err(StoreError::Corrupt(format!("snapshot record tag {other}"))),
    }
}

impl Store {
    /// Writes a consistent snapshot of this store to `out` (see the module
    /// comment); the returned value keeps the blobs it names readable.
    pub fn take_snapshot(&self, out: &mut impl Write) -> Result<SnapshotTaken<'_>, StoreError> {
        // Lock order as fsck: the blob store's maintenance lock, then the
        // writer.
        let pin = self.blobs.pin_segments()?;
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        if self.trees.meta.contains_key(SEEDING)? {
            // Half an install is not a state to seed anyone with.
            return Err(StoreError::InvalidOp(
                "this store is itself being seeded from a snapshot".into(),
            ));
        }
        // Everything the copy reflects is on disk here: the peer must never
        // hold an op this node could lose in a crash and number again.
        self.db.flush()?;
        let mut base = VersionVector::new();
        for origin in self.origins()? {
            let position = self.position(&origin)?;
            base.insert(origin, position);
        }
        let trees = shipped_trees(&self.db);
        let mut messages = 0;
        for name in &trees {
            out.write_all(b"T")?;
            write_len(out, name.as_bytes())?;
            let counting = name == "messages";
            for entry in self.db.open_tree(name)?.iter() {
                let (key, value) = entry?;
                out.write_all(b"E")?;
                write_len(out, &key)?;
                write_len(out, &value)?;
                messages += u64::from(counting);
            }
        }
        let (mut blobs, mut blob_bytes) = (0, 0);
        for entry in self.blobs.index_tree().iter() {
            let (key, value) = entry?;
            let loc = BlobLocation::decode(&value)?;
            if loc.refcount == 0 {
                continue; // in flight or left by a crash: no message has it
            }
            out.write_all(b"B")?;
            out.write_all(&BlobId::from_key(&key)?.0)?;
            out.write_all(&loc.encode())?;
            blobs += 1;
            blob_bytes += loc.len;
        }
        Ok(SnapshotTaken {
            store: self,
            _pin: pin,
            base,
            hlc_high: self.trees.hlc_high()?,
            trees,
            messages,
            blobs,
            blob_bytes,
        })
    }

    /// Where `origin`'s log stands here (log base included).
    fn position(&self, origin: &str) -> Result<LogPosition, StoreError> {
        let base = self.log_base()?.get(origin).copied().unwrap_or_default();
        let logged = match self
            .trees
            .oplog
            .scan_prefix(id::origin_prefix(origin))
            .next_back()
        {
            Some(entry) => {
                let last = ReplicationOp::decode(&entry?.1)?;
                LogPosition {
                    last: last.id.seq,
                    next: last.id.seq.saturating_add(last.seq_span()),
                }
            }
            None => LogPosition::default(),
        };
        Ok(LogPosition {
            last: base.last.max(logged.last),
            next: base.next.max(logged.next),
        })
    }

    /// The vector this store was seeded with (empty if it never was).
    pub fn log_base(&self) -> Result<VersionVector, StoreError> {
        match self.trees.meta.get(LOG_BASE)? {
            Some(v) => state::decode(&v),
            None => Ok(VersionVector::new()),
        }
    }

    /// True when this store should be seeded from a snapshot: it holds no
    /// op and was never seeded, or an install was cut short.
    pub fn needs_snapshot(&self) -> Result<bool, StoreError> {
        if self.trees.meta.contains_key(SEEDING)? {
            return Ok(true);
        }
        Ok(self.trees.oplog.is_empty() && !self.trees.meta.contains_key(LOG_BASE)?)
    }

    /// Starts installing a snapshot from `peer`: refuses a store with ops
    /// of its own, marks the store as being seeded (durably), and empties
    /// whatever an earlier, interrupted install left.
    pub fn begin_snapshot_install(&self, peer: &str) -> Result<SnapshotInstall<'_>, StoreError> {
        // The blob store's maintenance lock first, as fsck and
        // `take_snapshot` take it: the install appends blobs while holding
        // the writer, and fsck takes the append locks before the writer.
        let pin = self.blobs.pin_segments()?;
        let writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        if !self.needs_snapshot()? || !self.trees.oplog.is_empty() {
            return Err(StoreError::InvalidOp(
                "this store has changes of its own; a snapshot is only installed into a new or wiped store".into(),
            ));
        }
        self.trees.meta.insert(SEEDING, peer.as_bytes())?;
        self.db.flush()?;
        self.reset_seeded_state()?;
        Ok(SnapshotInstall {
            store: self,
            writer,
            _pin: pin,
            trees: shipped_trees(&self.db).into_iter().collect(),
            skipped: BTreeSet::new(),
            messages: 0,
            blobs: 0,
            blob_bytes: 0,
        })
    }

    /// Empties a store whose install was cut short, so it can be used
    /// without a snapshot (the whole log is pulled instead). Returns
    /// whether there was one.
    pub fn discard_partial_snapshot(&self) -> Result<bool, StoreError> {
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        if !self.trees.meta.contains_key(SEEDING)? {
            return Ok(false);
        }
        self.reset_seeded_state()?;
        self.db.flush()?;
        self.trees.meta.remove(SEEDING)?;
        self.db.flush()?;
        Ok(true)
    }

    /// Clears every shipped tree and the log base and drops every blob
    /// reference: what is left is an empty store whose unreferenced blobs
    /// the next open sweeps (or a new install references again). Only on
    /// a store holding the seeding marker, under the writer lock.
    fn reset_seeded_state(&self) -> Result<(), StoreError> {
        for name in shipped_trees(&self.db) {
            self.db.open_tree(name)?.clear()?;
        }
        let index = self.blobs.index_tree();
        for entry in index.iter() {
            let (key, value) = entry?;
            let loc = BlobLocation::decode(&value)?;
            if loc.refcount > 0 {
                index.insert(key, &BlobLocation { refcount: 0, ..loc }.encode())?;
            }
        }
        self.trees.meta.remove(LOG_BASE)?;
        Ok(())
    }
}

/// A snapshot being installed; holds the writer lock (and the blob
/// store's maintenance lock). Dropped without `finish`, it leaves the
/// seeding marker, so the store seeds again.
pub struct SnapshotInstall<'a> {
    store: &'a Store,
    writer: MutexGuard<'a, OpWriter>,
    /// No compaction or fsck meanwhile (lock order: this, the writer, the
    /// append locks).
    _pin: MutexGuard<'a, ()>,
    trees: BTreeSet<String>,
    /// Trees the peer sent that this version does not have.
    pub skipped: BTreeSet<String>,
    pub messages: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

impl SnapshotInstall<'_> {
    /// This store's trees that are not in `sent` (the trees the peer's
    /// snapshot carries): an older peer lacks a newer index.
    pub fn not_sent(&self, sent: &[String]) -> Vec<String> {
        self.trees
            .iter()
            .filter(|t| !sent.contains(t))
            .cloned()
            .collect()
    }

    /// Writes a batch of `tree`'s entries (a payload of `encode_entry`).
    /// A tree this store does not have is skipped (a newer peer's).
    pub fn entries(&mut self, tree: &str, payload: &[u8]) -> Result<(), StoreError> {
        if !self.trees.contains(tree) {
            self.skipped.insert(tree.to_string());
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in decode_entries(payload)? {
            batch.insert(key, value);
            self.messages += u64::from(tree == "messages");
        }
        self.store.db.open_tree(tree)?.apply_batch(batch)?;
        Ok(())
    }

    /// Stores blobs (bytes, refcount at the peer) with one sync per disk.
    pub fn blobs(&mut self, blobs: &[(Vec<u8>, u64)]) -> Result<(), StoreError> {
        let bytes: Vec<&[u8]> = blobs.iter().map(|(b, _)| b.as_slice()).collect();
        let ids = self.store.blobs.put_many(&bytes)?;
        let index = self.store.blobs.index_tree();
        for (id, (bytes, refcount)) in ids.iter().zip(blobs) {
            let loc = index
                .get(id.0)?
                .ok_or_else(|| StoreError::MissingBlob(String::from(*id)))?;
            let loc = BlobLocation::decode(&loc)?;
            index.insert(
                id.0,
                &BlobLocation {
                    refcount: *refcount,
                    ..loc
                }
                .encode(),
            )?;
            self.blobs += 1;
            self.blob_bytes += bytes.len() as u64;
        }
        Ok(())
    }

    /// Records `base` as the log base and `hlc_high` as the clock's floor,
    /// moves this node's next sequence number past its base, and clears
    /// the seeding marker: the install is durable and complete here.
    pub fn finish(
        mut self,
        base: &VersionVector,
        hlc_high: HlcTimestamp,
    ) -> Result<(), StoreError> {
        if let Some(bad) = base.keys().find(|o| !is_valid_node_name(o)) {
            return Err(StoreError::InvalidOp(format!(
                "snapshot vector names {bad:?}"
            )));
        }
        let meta = &self.store.trees.meta;
        meta.insert(LOG_BASE, state::encode(base)?)?;
        if hlc_high > self.store.trees.hlc_high()? {
            meta.insert(HLC_HIGH, state::encode(&hlc_high)?)?;
        }
        self.writer.clock.observe(hlc_high);
        if let Some(own) = base.get(&self.store.node) {
            // Past the last number whatever `next` says (a peer's mistake
            // must not make us number a change twice).
            let next = own.next.max(own.last.saturating_add(1));
            self.writer.next_seq = self.writer.next_seq.max(next);
        }
        // Everything installed is durable before the marker goes; sled
        // recovers a prefix of its writes, so the marker's removal is
        // never on disk without them.
        self.store.db.flush()?;
        meta.remove(SEEDING)?;
        self.store.db.flush()?;
        Ok(())
    }
}

/// The next sequence number a log base leaves `node` (`Store::open`).
pub(super) fn base_next(trees: &super::trees::Trees, node: &str) -> Result<u64, StoreError> {
    Ok(match trees.meta.get(LOG_BASE)? {
        Some(v) => state::decode::<VersionVector>(&v)?
            .get(node)
            .map_or(0, |p| p.next.max(p.last.saturating_add(1))),
        None => 0,
    })
}
