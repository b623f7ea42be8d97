//! Applying ops: the state trees are exactly what the op log produces.
//!
//! Trees (all in the store's sled db):
//! - `oplog`: `origin \0 seq(BE)` -> JSON `ReplicationOp`; every op applied.
//! - `messages`, `deliveries`: what each message owns and what one
//!   delivery's messages share (`message_rows.rs`; read as a
//!   [`MessageRecord`]).
//! - `folders`: `mailbox \0 folder \0 !ts(12 bytes BE) id` -> message id;
//!   the folder listing, newest delivery first (inverted HLC timestamp).
//! - `flags`: message id -> JSON [`FlagsRecord`] (per-field last writer wins).
//! - `folder_stats`: `mailbox \0 folder` -> total u64 BE, unseen u64 BE.
//! - `meta`: `hlc_high` -> highest HLC timestamp applied (seeds the clock).
//! - `tombstones`: message id -> HLC timestamp of the `Expunge`.
//! - `usage`: mailbox -> bytes u64 BE, messages u64 BE (quota accounting).
//! - `records`: small last-writer-wins records that travel in the log:
//!   `login \0 user \0 L` -> the newest [`LoginRecord`];
//!   `login \0 user \0 H !ts(12 bytes BE) op` -> every login, newest first;
//!   `dir \0 tree \0 key` -> the directory's record ([`DirectoryRecord`](super::records::DirectoryRecord)).
//! - `folder_defs`: `mailbox \0 folder id` -> JSON `FolderRecord` (user
//!   folders: name, parent, tombstone; see `folders.rs`).
//! - `orphans`: `mailbox \0 folder id \0 message id` -> empty: messages
//!   that asked for a folder not known here yet (they wait in INBOX).
//! - `threads`: each mailbox's conversations (`threads.rs`);
//!   `thread_heads`, `thread_members`, `thread_tips`: each folder's
//!   conversations by their newest message (`thread_heads.rs`).
//! - `sort_index`, `sorted_folders`: the listing again, per sort order,
//!   for the big folders that have an index (`sort_index.rs`).
//! - `search_pending`, `search_docs`, `search_shared`: the full-text
//!   search index (`search/`). A `Deliver` only queues its delivery in
//!   `search_pending`; the indexer writes the postings later, in batches
//!   (`search::indexer`). An `Expunge` forgets the message's entries.
//! - `blobs`, `segments` (owned by `blob/`): refcounts are raised and
//!   lowered here; a blob whose count reaches 0 leaves the index and its
//!   record is counted as garbage in its segment.
//!
//! **Invariant:** an op and the state change it causes are written in one
//! sled multi-tree transaction, so after a crash either both are there or
//! neither. Applying is idempotent: an op already in `oplog` changes
//! nothing. Independently of that check, a `SetSeen` only wins over a flag
//! written with a strictly older (timestamp, op id), so ops commute and
//! replays are harmless. A `SetSeen` for a message not (yet) delivered here
//! is kept in `flags` and takes effect when the `Deliver` arrives.
//! Merge rules (why each is deterministic whatever the order of arrival):
//! - flags and folder membership: last writer wins per field, by (HLC
//!   timestamp, op id), a total order every node computes alike;
//! - deletion: a tombstone; `Expunge` beats every other op on the message,
//!   including a `Deliver` replayed after it, so a deleted message never
//!   comes back;
//! - a `Move` of a message not here yet is dropped: ops of one origin
//!   arrive in order, and a node can only move a message it has seen
//!   delivered, so the `Deliver` always precedes it in practice;
//! - flags (`SetFlag`, and the older `SetSeen`): last writer wins per flag
//!   (`\Seen`, `\Flagged`, `\Answered` each have their own (timestamp,
//!   op id)), so marking read on one node and flagging on the other both
//!   stay;
//! - user folders: ids come from the creating op, so a rename never moves
//!   a message; name and parent are one last-writer-wins register;
//!   `DeleteFolder` is a tombstone. A message's folder is the last
//!   `Move`'s (or its `Deliver`'s) *if that folder is alive here*; a
//!   deleted folder means INBOX, and a folder not known yet means INBOX
//!   until its `CreateFolder` arrives (an `orphans` entry remembers it).
//!   So "delete folder" on one node and "deliver into it" on the other
//!   both end with the message in INBOX, whatever the order, and no mail
//!   is lost. Two nodes creating the same name at once make two folders
//!   (two ids); both are shown. A rename that makes a cycle through
//!   concurrent renames, or a parent that was deleted, is shown at the
//!   top level (the tree is drawn from converged state, see
//!   `folders::FolderTree`).
//!
//! Untrusted input: ops from the peer, checked by `ReplicationOp::validate`
//! before they reach `apply`.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::blob::{add_garbage, BlobId, BlobLocation};
use super::flags::{self, FlagStamp};
use super::folders;
use super::hlc::HlcTimestamp;
use super::id::{MessageId, OpId};
use super::listing;
use super::message_rows;
pub use super::message_rows::MessageRecord;
use super::op::{Flag, Op, ReplicationOp};
use super::records;
use super::search::index as search_index;
use super::thread_heads;
use super::threads;
use super::StoreError;

pub(super) const HLC_HIGH: &[u8] = b"hlc_high";
pub use super::trees::Trees;

/// Flags of one message; each field carries the (timestamp, op) that last
/// wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagsRecord {
    pub seen: bool,
    pub seen_ts: HlcTimestamp,
    pub seen_op: OpId,
    /// `\Flagged` and `\Answered` (absent in records written before they
    /// existed: never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<FlagStamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<FlagStamp>,
}

/// `mailbox \0 folder \0`: prefix of a folder's entries in `folders`.
pub fn folder_prefix(mailbox: &str, folder: &str) -> Vec<u8> {
    let mut k = stats_key(mailbox, folder);
    k.push(0);
    k
}

pub fn stats_key(mailbox: &str, folder: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(mailbox.len() + folder.len() + 1);
    k.extend_from_slice(mailbox.as_bytes());
    k.push(0);
    k.extend_from_slice(folder.as_bytes());
    k
}

pub fn folder_entry_key(rec: &MessageRecord, id: &MessageId) -> Vec<u8> {
    let mut k = folder_prefix(&rec.mailbox, &rec.folder);
    k.extend(rec.ts.to_be_bytes().iter().map(|b| !b));
    k.extend_from_slice(id.as_bytes());
    k
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("metadata record: {e}")))
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("encoding record: {e}")))
}

/// (total, unseen) of a folder; (bytes, messages) of a mailbox's usage.
pub fn decode_stats(v: Option<&[u8]>) -> (u64, u64) {
    match v {
        Some(v) if v.len() == 16 => {
            let mut t = [0u8; 8];
            let mut u = [0u8; 8];
            t.copy_from_slice(&v[..8]);
            u.copy_from_slice(&v[8..]);
            (u64::from_be_bytes(t), u64::from_be_bytes(u))
        }
        _ => (0, 0),
    }
}

pub fn encode_stats(total: u64, unseen: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&total.to_be_bytes());
    b[8..].copy_from_slice(&unseen.to_be_bytes());
    b
}

pub type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

pub fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

pub fn tx_decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> TxResult<T> {
    decode(bytes).or_else(abort)
}

/// The trees one op may touch, inside its transaction.
pub struct Tx<'a> {
    pub messages: &'a TransactionalTree,
    pub deliveries: &'a TransactionalTree,
    pub folders: &'a TransactionalTree,
    pub flags: &'a TransactionalTree,
    pub stats: &'a TransactionalTree,
    pub tombstones: &'a TransactionalTree,
    pub usage: &'a TransactionalTree,
    pub blobs: &'a TransactionalTree,
    pub segments: &'a TransactionalTree,
    pub folder_defs: &'a TransactionalTree,
    pub orphans: &'a TransactionalTree,
    pub sort_index: &'a TransactionalTree,
    pub sorted_folders: &'a TransactionalTree,
    pub threads: &'a TransactionalTree,
    pub thread_heads: &'a TransactionalTree,
    pub thread_members: &'a TransactionalTree,
    pub thread_tips: &'a TransactionalTree,
    /// What the grouped list's upkeep read before the transaction.
    pub plan: &'a thread_heads::HeadPlan,
    pub records: &'a TransactionalTree,
    pub search_pending: &'a TransactionalTree,
    pub search_docs: &'a TransactionalTree,
    pub search_shared: &'a TransactionalTree,
    pub queue_refs: &'a TransactionalTree,
}

/// Applies `op` and logs it, atomically. Returns false if it was already
/// applied (nothing changed). Callers hold the store's writer lock, so the
/// messages a folder op may rehome (`folders::affected`, read before the
/// transaction since sled transactions cannot scan) cannot change meanwhile.
pub fn apply(trees: &Trees, op: &ReplicationOp) -> Result<bool, StoreError> {
    apply_with(trees, op, false)
}

/// Like `apply`; with `deleted_at_origin`, a `Deliver` whose message the
/// sender has deleted already (and whose bytes are gone there) is logged
/// and recorded as a tombstone instead of delivered: the sender's `Expunge`
/// follows in the log, and deletion wins over delivery anyway.
pub fn apply_with(
    trees: &Trees,
    op: &ReplicationOp,
    deleted_at_origin: bool,
) -> Result<bool, StoreError> {
    let log_key = op.id.log_key();
    let log_value = op.encode()?;
    let ts_value = encode(&op.ts)?;
    let affected = folders::affected(trees, &op.op)?;
    let plan = thread_heads::plan(trees, &op.op, &affected)?;
    // Every tree an op may touch, in this order (sled's tuple form stops
    // at 14 trees; the slice form has no limit).
    let all: [&sled::Tree; 24] = [
        &trees.oplog,
        &trees.messages,
        &trees.folders,
        &trees.flags,
        &trees.folder_stats,
        &trees.meta,
        &trees.tombstones,
        &trees.usage,
        &trees.records,
        &trees.blobs,
        &trees.segments,
        &trees.folder_defs,
        &trees.orphans,
        &trees.sort_index,
        &trees.deliveries,
        &trees.sorted_folders,
        &trees.threads,
        &trees.thread_heads,
        &trees.thread_members,
        &trees.thread_tips,
        &trees.queue_refs,
        &trees.search_pending,
        &trees.search_docs,
        &trees.search_shared,
    ];
    all[..]
        .transaction(|view| {
            let [oplog, messages, folders, flags, stats, meta, tombstones, usage, records, blobs, segments, folder_defs, orphans, sort_index, deliveries, sorted_folders, threads, thread_heads, thread_members, thread_tips, queue_refs, search_pending, search_docs, search_shared] =
                view.as_slice()
            else {
                return abort(StoreError::Corrupt("transaction view".into()));
            };
                if oplog.get(&log_key)?.is_some() {
                    return Ok(false);
                }
                let tx = Tx {
                    messages,
                    deliveries,
                    folders,
                    flags,
                    stats,
                    tombstones,
                    usage,
                    records,
                    blobs,
                    segments,
                    folder_defs,
                    orphans,
                    sort_index,
                    sorted_folders,
                    threads,
                    search_pending,
                    search_docs,
                    search_shared,
                    thread_heads,
                    thread_members,
                    thread_tips,
                    plan: &plan,
                    queue_refs,
                };
                match &op.op {
                    Op::Deliver { .. } if deleted_at_origin => {
                        for message in op.delivered_ids() {
                            if tx.messages.get(message.as_bytes())?.is_none() {
                                tx.tombstones
                                    .insert(message.as_bytes(), encode(&op.ts).or_else(abort)?)?;
                            }
                        }
                    }
                    _ => apply_op(&tx, op, &affected)?,
                }
                let high: HlcTimestamp = match meta.get(HLC_HIGH)? {
                    Some(v) => tx_decode(&v)?,
                    None => HlcTimestamp::default(),
                };
                if op.ts > high {
                    meta.insert(HLC_HIGH, ts_value.as_slice())?;
                }
                oplog.insert(log_key.as_slice(), log_value.as_slice())?;
                Ok(true)
        })
        .map_err(StoreError::from_tx)
}

fn apply_op(tx: &Tx, op: &ReplicationOp, affected: &[MessageId]) -> TxResult<()> {
    match &op.op {
        Op::Deliver {
            targets,
            blob,
            size,
            received_at,
            summary,
            queue_ref,
        } => {
            let threaded = threads::is_threaded(targets.len(), summary.thread.as_deref());
            let mut delivered = false;
            for (target, ((mailbox, folder), message)) in
                targets.iter().zip(op.delivered_ids()).enumerate()
            {
                let gone = tx.tombstones.get(message.as_bytes())?.is_some();
                if gone || tx.messages.get(message.as_bytes())?.is_some() {
                    continue;
                }
                // One copy per mailbox of one accepted message (`queue_refs`).
                let claim = match queue_ref {
                    Some(r) => super::queue_refs::claim(tx, op, r, mailbox, &message)?,
                    None => super::queue_refs::Claim::Deliver,
                };
                let replaces = match claim {
                    super::queue_refs::Claim::Lost => continue,
                    super::queue_refs::Claim::Deliver => None,
                    super::queue_refs::Claim::DeliverReplacing(loser) => Some(loser),
                };
                let (effective, wanted) = folders::resolve(tx, mailbox, folder)?;
                let rec = MessageRecord {
                    mailbox: mailbox.clone(),
                    folder: effective,
                    blob: *blob,
                    size: *size,
                    received_at: *received_at,
                    ts: op.ts,
                    summary: summary.clone(),
                    moved: None,
                    wanted,
                    target: u32::try_from(target)
                        .or_else(|_| abort(StoreError::InvalidOp("too many targets".into())))?,
                    threaded,
                };
                if let Some(loser) = &replaces {
                    // The loser goes first, so the indexes planned before
                    // the transaction see the folder as it was; the bytes
                    // (often shared) are held meanwhile.
                    hold_blob(tx, &rec.blob)?;
                    apply_expunge(tx, op, loser)?;
                }
                apply_deliver(tx, &message, &rec)?;
                if replaces.is_some() {
                    release_blob(tx, &rec.blob)?;
                }
                delivered = true;
            }
            if delivered {
                search_index::tx_queue(tx, op)?;
            }
            Ok(())
        }
        Op::SetSeen { message, seen } => {
            if tx.tombstones.get(message.as_bytes())?.is_some() {
                return Ok(());
            }
            apply_set_seen(tx, op, message, *seen)
        }
        Op::SetFlag {
            message,
            flag,
            value,
        } => {
            if tx.tombstones.get(message.as_bytes())?.is_some() {
                return Ok(());
            }
            match flag {
                Flag::Seen => apply_set_seen(tx, op, message, *value),
                other => flags::apply_other(tx, op, message, *other, *value),
            }
        }
        Op::Move { message, folder } => apply_move(tx, op, message, folder),
        Op::Expunge { message } => apply_expunge(tx, op, message),
        Op::Login { user, ip, at } => records::apply_login(tx, op, user, ip, *at),
        Op::Directory { tree, key, value } => {
            records::apply_directory(tx, op, tree, key, value.as_deref())
        }
        Op::CreateFolder { .. } | Op::RenameFolder { .. } | Op::DeleteFolder { .. } => {
            folders::apply(tx, op, affected)
        }
    }
}

pub fn is_seen(flags: &TransactionalTree, id: &MessageId) -> TxResult<bool> {
    Ok(match flags.get(id.as_bytes())? {
        Some(v) => tx_decode::<FlagsRecord>(&v)?.seen,
        None => false,
    })
}

/// Adds `total` and `unseen` (may be negative) to a folder's counts.
pub fn bump_folder(
    stats: &TransactionalTree,
    mailbox: &str,
    folder: &str,
    total: i64,
    unseen: i64,
) -> TxResult<()> {
    let key = stats_key(mailbox, folder);
    let (t, u) = decode_stats(stats.get(&key)?.as_deref());
    stats.insert(
        key,
        &encode_stats(
            t.saturating_add_signed(total),
            u.saturating_add_signed(unseen),
        ),
    )?;
    Ok(())
}

fn bump_usage(usage: &TransactionalTree, mailbox: &str, bytes: i64, messages: i64) -> TxResult<()> {
    let (b, m) = decode_stats(usage.get(mailbox.as_bytes())?.as_deref());
    usage.insert(
        mailbox.as_bytes(),
        &encode_stats(
            b.saturating_add_signed(bytes),
            m.saturating_add_signed(messages),
        ),
    )?;
    Ok(())
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn apply_move(tx: &Tx, op: &ReplicationOp, id: &MessageId, folder: &str) -> TxResult<()> {
    let Some(rec) = message_rows::tx_read(tx.messages, tx.deliveries, id)? else {
        return Ok(()); // deleted, or (in theory) not delivered here yet
    };
    let newer = match &rec.moved {
        Some((ts, by)) => (ts, by) < (&op.ts, &op.id),
        None => rec.ts < op.ts,
    };
    if !newer {
        return Ok(());
    }
    let (effective, wanted) = folders::resolve(tx, &rec.mailbox, folder)?;
    let next = MessageRecord {
        folder: effective,
        wanted,
        moved: Some((op.ts, op.id.clone())),
        ..rec.clone()
    };
    listing::relocate(tx, id, &rec, &next)
}

pub(super) fn apply_expunge(tx: &Tx, op: &ReplicationOp, id: &MessageId) -> TxResult<()> {
    tx.tombstones
        .insert(id.as_bytes(), encode(&op.ts).or_else(abort)?)?;
    let Some(rec) = message_rows::tx_remove(tx.messages, tx.deliveries, id)? else {
        return Ok(());
    };
    listing::unplace(tx, id, &rec)?;
    threads::tx_remove(tx, id, &rec)?;
    search_index::tx_unindex(tx, id, &rec)?;
    tx.flags.remove(id.as_bytes())?;
    bump_usage(tx.usage, &rec.mailbox, -signed(rec.size), -1)?;
    release_blob(tx, &rec.blob)
}

/// One reference more (taken back by `release_blob`).
fn hold_blob(tx: &Tx, blob: &BlobId) -> TxResult<()> {
    let Some(v) = tx.blobs.get(blob.0)? else {
        return abort(StoreError::MissingBlob(String::from(*blob)));
    };
    let mut loc = BlobLocation::decode(&v).or_else(abort)?;
    loc.refcount = loc.refcount.saturating_add(1);
    tx.blobs.insert(&blob.0, &loc.encode())?;
    Ok(())
}

/// One reference fewer; at none, the record becomes garbage.
fn release_blob(tx: &Tx, blob: &BlobId) -> TxResult<()> {
    let Some(v) = tx.blobs.get(blob.0)? else {
        return Ok(()); // fsck reports a message whose blob is missing
    };
    let mut loc = BlobLocation::decode(&v).or_else(abort)?;
    loc.refcount = loc.refcount.saturating_sub(1);
    if loc.refcount > 0 {
        tx.blobs.insert(&blob.0, &loc.encode())?;
        return Ok(());
    }
    tx.blobs.remove(&blob.0)?;
    add_garbage(tx.segments, loc.segment, loc.record_len())
}

fn apply_deliver(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    let Some(loc) = tx.blobs.get(rec.blob.0)? else {
        return abort(StoreError::MissingBlob(String::from(rec.blob)));
    };
    let mut loc = BlobLocation::decode(&loc).or_else(abort)?;
    if loc.len != rec.size {
        return abort(StoreError::InvalidOp(format!(
            "message {id}: size {} but blob has {}",
            rec.size, loc.len
        )));
    }
    loc.refcount = loc.refcount.saturating_add(1);
    tx.blobs.insert(&rec.blob.0, &loc.encode())?;
    message_rows::tx_insert(tx.messages, tx.deliveries, id, rec)?;
    threads::tx_add(tx, id, rec)?;
    listing::place(tx, id, rec)?;
    bump_usage(tx.usage, &rec.mailbox, signed(rec.size), 1)
}

fn apply_set_seen(tx: &Tx, op: &ReplicationOp, id: &MessageId, seen: bool) -> TxResult<()> {
    let (flags, stats) = (tx.flags, tx.stats);
    let old = match flags.get(id.as_bytes())? {
        Some(v) => Some(tx_decode::<FlagsRecord>(&v)?),
        None => None,
    };
    if let Some(old) = &old {
        // Last writer wins: an op older than (or equal to) the current
        // writer leaves the flag alone.
        if (old.seen_ts, &old.seen_op) >= (op.ts, &op.id) {
            return Ok(());
        }
    }
    let was_seen = old.as_ref().is_some_and(|f| f.seen);
    let (flagged, answered) = match old {
        Some(old) => (old.flagged, old.answered),
        None => (None, None),
    };
    let rec = FlagsRecord {
        seen,
        seen_ts: op.ts,
        seen_op: op.id.clone(),
        flagged,
        answered,
    };
    flags.insert(id.as_bytes(), encode(&rec).or_else(abort)?)?;
    if was_seen == seen {
        return Ok(());
    }
    if let Some(m) = message_rows::tx_read(tx.messages, tx.deliveries, id)? {
        let key = stats_key(&m.mailbox, &m.folder);
        let (total, unseen) = decode_stats(stats.get(&key)?.as_deref());
        let unseen = if seen {
            unseen.saturating_sub(1)
        } else {
            unseen.saturating_add(1)
        };
        stats.insert(key, &encode_stats(total, unseen))?;
    }
    Ok(())
}
