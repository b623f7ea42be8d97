//! The message store (R5): mailboxes, folders, messages and their flags.
//!
//! Built as DESIGN.md "The store" says, from the first line:
//! - message bytes are blobs (`blob/`): content-addressed by BLAKE3,
//!   appended to segment files spread over several data directories (one
//!   per disk, `<dir>/blobs/`), stored once however many mailboxes receive
//!   them (refcounted), reclaimed by compaction when no message refers to
//!   them any more;
//! - metadata lives in sled under `<dir>/meta`, and every change to it is a
//!   [`ReplicationOp`] (`op.rs`) with an op id (origin node, sequence) and a
//!   hybrid logical clock timestamp (`hlc.rs`). The `oplog` tree keeps every
//!   op; the state trees (`state.rs`) are what applying them produced.
//!   Replication (a later issue) ships `ops_since` and the blobs the ops
//!   name to the peer, which feeds them to `apply_remote`.
//!
//! Delivery order, and which step makes what durable:
//! 1. append the bytes to their disk's active segment and fsync it
//!    (`BlobStore::put`)
//!    — **the message bytes are durable here**;
//! 2. index the blob, then apply + log the `Deliver` op in one sled
//!    transaction;
//! 3. `sled::Db::flush` — **the metadata is durable here**; only then does
//!    `deliver` return Ok. A crash before 3 leaves at most an unreferenced
//!    blob (refcount 0, reclaimed by compaction later) or unindexed bytes at
//!    a segment's end (cut off on the next open). This relies on sled
//!    recovering a prefix of its writes in order.
//!
//! **Invariant:** `store` knows nothing of HTTP, SMTP or users' passwords;
//! `user` is an already-normalized mailbox address.
//!
//! Untrusted input: message bytes (only hashed and stored here; headers are
//! read by `mime::summarize`), message ids from URLs (`MessageId::from_str`)
//! and, later, ops from the peer (`apply_remote`).

mod blob;
pub mod commands;
mod deliver;
#[cfg(test)]
mod delivery_tests;
mod directory_log;
mod flags;
mod folder_api;
#[cfg(test)]
mod folder_tests;
pub mod folders;
mod fsck;
mod fsck_report;
mod hlc;
mod id;
mod listing;
#[cfg(test)]
mod listing_bench;
mod logins;
#[cfg(test)]
mod maintenance_tests;
mod message_rows;
#[cfg(test)]
mod model_tests;
mod op;
mod purge;
mod queue_refs;
mod records;
mod replica;
pub mod search;
#[cfg(test)]
mod size_bench;
mod snapshot;
#[cfg(test)]
mod snapshot_bench;
#[cfg(test)]
mod snapshot_tests;
mod sort_index;
mod state;
pub mod stats;
#[cfg(test)]
mod tests;
mod thread_heads;
#[cfg(test)]
mod thread_heads_tests;
mod threads;
mod trees;

use std::path::Path;
use std::sync::Mutex;

use crate::fsutil::group_sync::GroupSync;

use sled::transaction::TransactionError;

pub use blob::{BlobId, BlobLocation, CompactReport, DataDirSpec, RebalanceReport};
pub use directory_log::DirectoryEntry;
pub use folder_api::{FolderCounts, UserFolder};
pub use folders::FolderProblem;
pub use fsck_report::{FsckReport, LastFsck};
pub use hlc::HlcTimestamp;
pub use id::{is_valid_node_name, MessageId, OpId};
pub use listing::{ListOrder, SortKey};
pub use logins::LoginStamp;
pub use op::{Flag, Op, ReplicationOp, SummaryFields, MAX_NAME};
pub use records::LoginRecord;
pub use search::{SearchQuery, SearchResults};
pub use snapshot::{
    decode_entries, encode_entry, read_record, LogPosition, SnapshotInstall, SnapshotRecord,
    SnapshotTaken, VersionVector,
};
pub use stats::{DiskStats, StoreStats};
pub use thread_heads::{ConversationPage, ConversationRow};

use blob::BlobStore;
use hlc::HybridClock;
use op::check_name;
use state::{FlagsRecord, MessageRecord, Trees};

/// One message as the folder list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSummary {
    pub id: MessageId,
    pub from: String,
    pub subject: String,
    /// Unix seconds: the header `Date`, else `received_at`.
    pub date: i64,
    /// Unix seconds when this store (or its peer) accepted the message.
    pub received_at: i64,
    pub size: u64,
    pub seen: bool,
    pub flagged: bool,
    pub answered: bool,
    /// The folder it is in.
    pub folder: String,
    /// Its conversation's root, when it is in the conversation index
    /// (`threads.rs`); what `conversation_sizes` counts by.
    pub conversation: Option<String>,
}

/// One page of a folder, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagePage {
    pub messages: Vec<MessageSummary>,
    /// Messages in the whole folder.
    pub total: usize,
}

/// What a mailbox holds (quota accounting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
}

/// A message with its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub summary: MessageSummary,
    pub raw: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid message id {0:?}")]
    BadMessageId(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("no such message")]
    NoSuchMessage,
    #[error("{0}")]
    Folder(#[from] FolderProblem),
    #[error("blob {0} is not stored here")]
    MissingBlob(String),
    #[error("invalid op: {0}")]
    InvalidOp(String),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("store lock poisoned by a panic")]
    Poisoned,
    #[error("store I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("store database error: {0}")]
    Db(#[from] sled::Error),
}

impl StoreError {
    fn from_tx(e: TransactionError<StoreError>) -> StoreError {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Db(e),
        }
    }
}

/// Hands out this node's op ids and timestamps. Held while an op is
/// applied, so local ops are applied in sequence order (a reader of
/// `ops_since` never sees seq n+1 before n). Deliveries flush after
/// letting it go: sled's flush makes every write before it durable, so
/// concurrent deliveries share flushes (`Store::metadata_flush`) instead
/// of queueing behind each other's, and sled recovers a prefix of its
/// writes, so a crash can never keep op n+1 and lose op n.
struct OpWriter {
    clock: HybridClock,
    next_seq: u64,
}

/// The message store. `Send + Sync`; share it as `Arc<Store>`.
pub struct Store {
    node: String,
    db: sled::Db,
    blobs: BlobStore,
    trees: Trees,
    writer: Mutex<OpWriter>,
    /// Deliveries flushing at the same moment share one sled flush (group
    /// commit): sled's own flush syncs its log once per caller.
    metadata_flush: GroupSync,
}

/// Opens the sled database. A store closed a moment ago in this process
/// may still hold its file lock while sled's flusher thread winds down, so
/// a lock conflict is retried for a second before it is reported.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let mut tries = 0;
    loop {
        match sled::Config::new().path(path).use_compression(true).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::Other && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Store {
    /// Opens or creates a store kept entirely under `dir` (metadata and one
    /// data directory). See `open_with`.
    pub fn open(dir: &Path, node: &str) -> Result<Store, StoreError> {
        let spec = DataDirSpec {
            path: dir.to_path_buf(),
            weight: 1,
        };
        Store::open_with(dir, &[spec], node)
    }

    /// Opens or creates the store: metadata in the sled db `dir/meta`,
    /// blobs spread over `data_dirs` (each gets `blobs/` segment files).
    /// `node` = this node's name, origin of every op it logs (lower-case
    /// letters, digits, `-`, `.`).
    pub fn open_with(
        dir: &Path,
        data_dirs: &[DataDirSpec],
        node: &str,
    ) -> Result<Store, StoreError> {
        if !is_valid_node_name(node) {
            return Err(StoreError::InvalidName(format!("node name {node:?}")));
        }
        std::fs::create_dir_all(dir)?;
        let db = open_db(&dir.join("meta"))?;
        let meta = db.open_tree("meta")?;
        let blobs = BlobStore::open(&db, &meta, data_dirs)?;
        let trees = Trees::open(
            &db,
            blobs.index_tree().clone(),
            blobs.segments_tree().clone(),
        )?;
        let next_seq = match trees.oplog.scan_prefix(id::origin_prefix(node)).next_back() {
            Some(entry) => {
                let last = ReplicationOp::decode(&entry?.1)?;
                last.id.seq.saturating_add(last.seq_span())
            }
            None => 1,
        }
        // A store seeded from a snapshot (`snapshot.rs`) continues past
        // the numbers its base says this node used.
        .max(snapshot::base_next(&trees, node)?);
        thread_heads::build_if_new(&trees)?;
        let clock = HybridClock::new(trees.hlc_high()?);
        let metadata_flush = GroupSync::for_sled(db.clone());
        let store = Store {
            node: node.to_string(),
            db,
            blobs,
            trees,
            writer: Mutex::new(OpWriter { clock, next_seq }),
            metadata_flush,
        };
        // A data folder from before search existed gets its index now.
        store.ensure_search_index()?;
        Ok(store)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Moves a message of `user` to another of their folders.
    pub fn move_message(&self, user: &str, id: &MessageId, folder: &str) -> Result<(), StoreError> {
        check_name("folder", folder)?;
        if !self.folder_exists(user, folder)? {
            return Err(FolderProblem::NoSuchFolder.into());
        }
        let rec = self.owned(user, id)?;
        if rec.folder == folder {
            return Ok(());
        }
        self.log_local(|_| Op::Move {
            message: id.clone(),
            folder: folder.to_string(),
        })
    }

    /// Deletes a message of `user` for good (its bytes are reclaimed by
    /// compaction once no mailbox refers to them).
    pub fn expunge(&self, user: &str, id: &MessageId) -> Result<(), StoreError> {
        self.owned(user, id)?;
        self.log_local(|_| Op::Expunge {
            message: id.clone(),
        })
    }

    /// Bytes and messages in `user`'s mailbox, all folders.
    pub fn usage(&self, user: &str) -> Result<Usage, StoreError> {
        let (bytes, messages) =
            state::decode_stats(self.trees.usage.get(user.as_bytes())?.as_deref());
        Ok(Usage { bytes, messages })
    }

    /// Compacts sealed segments with at least `min_garbage_percent` garbage.
    pub fn compact(&self, min_garbage_percent: u64) -> Result<CompactReport, StoreError> {
        self.blobs.compact(min_garbage_percent)
    }

    /// Moves blobs to the data directory placement picks for them.
    pub fn rebalance(&self) -> Result<RebalanceReport, StoreError> {
        self.blobs.rebalance()
    }

    /// Empties a data directory so it can be removed.
    pub fn drain(&self, dir: &Path) -> Result<RebalanceReport, StoreError> {
        self.blobs.drain(dir)
    }

    /// Takes a drained directory back into use.
    pub fn undrain(&self, dir: &Path) -> Result<(), StoreError> {
        self.blobs.undrain(dir)
    }

    /// The record of `id` if it is `user`'s, else `NoSuchMessage`.
    fn owned(&self, user: &str, id: &MessageId) -> Result<MessageRecord, StoreError> {
        self.record(id)?
            .filter(|r| r.mailbox == user)
            .ok_or(StoreError::NoSuchMessage)
    }

    /// Newest first; `offset`/`limit` for paging; `total` = messages in the
    /// folder. Other orders: `list_sorted` (listing.rs).
    pub fn list(
        &self,
        user: &str,
        folder: &str,
        offset: usize,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        self.list_sorted(user, folder, ListOrder::default(), offset, limit)
    }

    /// The message and its bytes; None if there is none or it isn't `user`'s.
    pub fn message(&self, user: &str, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let Some(rec) = self.record(id)?.filter(|r| r.mailbox == user) else {
            return Ok(None);
        };
        let raw = self
            .blobs
            .get(&rec.blob)?
            .ok_or_else(|| StoreError::MissingBlob(String::from(rec.blob)))?;
        Ok(Some(StoredMessage {
            summary: self.summary(id.clone(), &rec)?,
            raw,
        }))
    }

    /// Sets or clears `\Seen`. `NoSuchMessage` if it isn't `user`'s.
    /// Logs no op when the flag already has that value.
    pub fn set_seen(&self, user: &str, id: &MessageId, seen: bool) -> Result<(), StoreError> {
        self.owned(user, id)?;
        if self.flags(id)?.is_some_and(|f| f.seen) == seen {
            return Ok(());
        }
        self.log_local(|_| Op::SetSeen {
            message: id.clone(),
            seen,
        })
    }

    /// Unseen messages in a folder.
    pub fn unseen_count(&self, user: &str, folder: &str) -> Result<usize, StoreError> {
        check_name("mailbox", user)?;
        check_name("folder", folder)?;
        let (_, unseen) = state::decode_stats(
            self.trees
                .folder_stats
                .get(state::stats_key(user, folder))?
                .as_deref(),
        );
        Ok(usize::try_from(unseen).unwrap_or(usize::MAX))
    }

    /// Ops made by `origin` with sequence numbers greater than `after`, in
    /// order, at most `limit` of them. Replication reads the log with this.
    /// A store seeded from a snapshot has none at or below its log base
    /// (`snapshot.rs`); a peer only asks past what it has, never below.
    pub fn ops_since(
        &self,
        origin: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ReplicationOp>, StoreError> {
        if !is_valid_node_name(origin) {
            return Err(StoreError::InvalidName(format!("node name {origin:?}")));
        }
        if after == u64::MAX {
            return Ok(Vec::new());
        }
        let start = OpId {
            origin: origin.to_string(),
            seq: after.saturating_add(1),
        }
        .log_key();
        let prefix = id::origin_prefix(origin);
        let mut out = Vec::new();
        for entry in self.trees.oplog.range(start..).take(limit) {
            let (key, value) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push(ReplicationOp::decode(&value)?);
        }
        Ok(out)
    }

    /// Stores message bytes ahead of a replicated `Deliver` op naming them.
    pub fn put_blob(&self, raw: &[u8]) -> Result<BlobId, StoreError> {
        self.blobs.put(raw)
    }

    /// Applies an op made elsewhere (the peer, or a replay). Idempotent:
    /// returns Ok(false) if it was applied before. A `Deliver` needs its
    /// blob stored first (`put_blob`). Durable when it returns.
    pub fn apply_remote(&self, op: &ReplicationOp) -> Result<bool, StoreError> {
        self.apply_remote_with(op, false)
    }

    /// Applies a `Deliver` whose message the sender has deleted already
    /// (its bytes are gone there): recorded as a tombstone, no blob needed.
    pub fn apply_remote_deleted(&self, op: &ReplicationOp) -> Result<bool, StoreError> {
        if !matches!(op.op, Op::Deliver { .. }) {
            return Err(StoreError::InvalidOp(
                "only a delivery can arrive already deleted".into(),
            ));
        }
        self.apply_remote_with(op, true)
    }

    fn apply_remote_with(&self, op: &ReplicationOp, deleted: bool) -> Result<bool, StoreError> {
        op.validate()?;
        let mut w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        w.clock.observe(op.ts);
        let applied = state::apply_with(&self.trees, op, deleted)?;
        let after = op.id.seq.saturating_add(op.seq_span());
        if op.id.origin == self.node && after > w.next_seq {
            // Our own op coming back (e.g. restored from the peer after
            // losing local state): never reuse its sequence numbers.
            w.next_seq = after;
        }
        self.db.flush()?;
        Ok(applied)
    }

    /// Makes a local op (id and timestamp from this node), applies and logs
    /// it, and flushes. `make` gets the op id so it can derive ids from it.
    fn log_local(&self, make: impl FnOnce(&OpId) -> Op) -> Result<(), StoreError> {
        let mut w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        self.apply_local(&mut w, make)?;
        // The metadata becomes durable here.
        self.db.flush()?;
        Ok(())
    }

    /// Applies and logs one local op under the writer lock (not flushed);
    /// returns it.
    fn apply_local(
        &self,
        w: &mut OpWriter,
        make: impl FnOnce(&OpId) -> Op,
    ) -> Result<ReplicationOp, StoreError> {
        let id = OpId {
            origin: self.node.clone(),
            seq: w.next_seq,
        };
        let ts = w.clock.now();
        let op = ReplicationOp {
            op: make(&id),
            id,
            ts,
        };
        op.validate()?;
        state::apply(&self.trees, &op)?;
        w.next_seq = w.next_seq.saturating_add(op.seq_span());
        Ok(op)
    }

    fn record(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        message_rows::read(&self.trees.messages, &self.trees.deliveries, id)
    }

    fn flags(&self, id: &MessageId) -> Result<Option<FlagsRecord>, StoreError> {
        self.trees
            .flags
            .get(id.as_bytes())?
            .map(|v| state::decode(&v))
            .transpose()
    }

    fn summary(&self, id: MessageId, rec: &MessageRecord) -> Result<MessageSummary, StoreError> {
        let flags = self.flags(&id)?;
        let flag = |f: Flag| flags.as_ref().is_some_and(|r| r.get(f));
        let (seen, flagged, answered) =
            (flag(Flag::Seen), flag(Flag::Flagged), flag(Flag::Answered));
        Ok(MessageSummary {
            id,
            from: rec.summary.from.clone(),
            subject: rec.summary.subject.clone(),
            date: rec.summary.date.unwrap_or(rec.received_at),
            received_at: rec.received_at,
            size: rec.size,
            seen,
            flagged,
            answered,
            folder: rec.folder.clone(),
            conversation: rec.summary.thread.clone().filter(|_| rec.threaded),
        })
    }
}
