//! Keeping the search index: what an op's transaction does (queue a new
//! delivery, forget a deleted message), the rebuild from the live messages
//! (a store from before search existed, or fsck's repair) and fsck's check.
//! The postings themselves are written by the indexer (`indexer.rs`).
//!
//! Trees (besides `search_postings`, see `postings.rs`):
//! - `search_pending`: delivery key (`origin \0 seq BE`, as in `deliveries`)
//!   -> empty, written in the `Deliver` op's transaction: deliveries not
//!   indexed yet. A query reads them directly (`Store::search`), so a
//!   message is found the moment it is delivered;
//! - `search_docs`: delivery key -> its [`Layout`] byte and the delivery's
//!   [`SearchDocument`] (normalized text), once per delivery however many
//!   mailboxes got it; written by the indexer, removed with the
//!   delivery's last message;
//! - `search_shared`: `mailbox \0 delivery key target (u32 BE)` -> empty,
//!   one entry per recipient of a delivery to more than [`SHARED_ABOVE`]
//!   mailboxes: the small per-mailbox list through which a user finds the
//!   announcements they got, whose terms are posted once (scope `Shared`).
//!
//! Why a queue: posting lists are shared by every message holding a term,
//! so writing them inside each delivery's transaction rewrote dozens of
//! chunks per message and cost most of the delivery's time (measured in
//! bench/README.md). A batch writes each chunk once for many deliveries.
//!
//! `meta` key `search_index` holds [`INDEX_VERSION`] once a rebuild has
//! finished; a store opened without it rebuilds the index first.
//!
//! **Invariant:** every live delivery has its document or its pending
//! entry (not both); every live message of an indexed shared delivery has
//! its `search_shared` entry and no other entry exists (fsck checks both).
//! Postings may name deleted messages; queries filter them (see
//! `postings.rs`).

use super::text::SearchDocument;
use crate::store::id::{MessageId, OpId};
use crate::store::message_rows::{self, MessageRecord};
use crate::store::op::{ReplicationOp, MAX_TARGETS};
use crate::store::state::{abort, Tx, TxResult};
use crate::store::threads::THREAD_TARGETS_MAX;
use crate::store::{FsckReport, Store, StoreError};

/// Deliveries to more than this many mailboxes are indexed once.
pub const SHARED_ABOVE: usize = THREAD_TARGETS_MAX;
/// Written to `meta` once the index is complete.
pub const INDEX_VERSION: &[u8] = &[2];
const META_KEY: &[u8] = b"search_index";
#[cfg(test)]
pub const INDEX_VERSION_KEY_FOR_TESTS: &[u8] = META_KEY;
/// Deliveries a rebuild indexes per batch.
const REBUILD_BATCH: usize = 2_000;

/// `mailbox \0`: one mailbox's shared deliveries.
pub fn shared_prefix(mailbox: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(mailbox.len() + 20);
    k.extend_from_slice(mailbox.as_bytes());
    k.push(0);
    k
}

pub(super) fn shared_key(mailbox: &str, delivery: &[u8], target: u32) -> Vec<u8> {
    let mut k = shared_prefix(mailbox);
    k.extend_from_slice(delivery);
    k.extend_from_slice(&target.to_be_bytes());
    k
}

/// The number a message is posted under in its mailbox's scope.
pub(super) fn message_number(id: &MessageId) -> Result<u64, StoreError> {
    Ok(id.op_id()?.seq)
}

/// Queues the delivery of a `Deliver` op that made at least one message
/// here, inside the op's transaction.
pub fn tx_queue(tx: &Tx, op: &ReplicationOp) -> TxResult<()> {
    tx.search_pending
        .insert(op.id.log_key().as_slice(), &[] as &[u8])?;
    Ok(())
}

/// Forgets a deleted message: its shared entry, and its delivery's
/// document or pending entry when it was the delivery's last message
/// (`tx.deliveries` no longer has the row).
pub fn tx_unindex(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    let delivery = message_rows::delivery_key(id, rec).or_else(abort)?;
    tx.search_shared
        .remove(shared_key(&rec.mailbox, &delivery, rec.target))?;
    if tx.deliveries.get(&delivery)?.is_none() {
        tx.search_docs.remove(delivery.as_slice())?;
        tx.search_pending.remove(delivery)?;
    }
    Ok(())
}

impl Store {
    /// The document of a delivered message: read from its bytes, else
    /// (bytes gone) from its header summary.
    pub(super) fn search_document_of(&self, rec: &MessageRecord) -> SearchDocument {
        match self.blobs.get(&rec.blob) {
            Ok(Some(raw)) => SearchDocument::from_message(&raw),
            Ok(None) => SearchDocument::from_summary(&rec.summary),
            Err(err) => {
                tracing::warn!(%err, "message bytes unreadable for the search index");
                SearchDocument::from_summary(&rec.summary)
            }
        }
    }

    /// The live messages of the delivery with log key `key`, from the rows
    /// alone: a store seeded from a snapshot has no op of an older
    /// delivery in its log. Target `i` is message `(origin, seq + i)`;
    /// targets are probed in order until the delivery row's live count is
    /// found (deleted targets leave gaps), at most `op::MAX_TARGETS`.
    pub(super) fn delivery_messages(
        &self,
        key: &[u8],
    ) -> Result<Vec<(MessageId, MessageRecord)>, StoreError> {
        let live = message_rows::live_count(&self.trees.deliveries, key)?;
        let Some(op) = op_of_key(key) else {
            return Err(StoreError::Corrupt(format!(
                "search index: delivery key {}",
                describe(key)
            )));
        };
        let mut out = Vec::new();
        for target in 0..MAX_TARGETS as u64 {
            if out.len() as u64 >= live {
                break;
            }
            let id = MessageId::from_op(&OpId {
                origin: op.origin.clone(),
                seq: op.seq.saturating_add(target),
            });
            if let Some(rec) = self.record(&id)? {
                if u64::from(rec.target) == target {
                    out.push((id, rec));
                }
            }
        }
        Ok(out)
    }

    /// Builds the index when this store has none yet (opened on a data
    /// folder from before search existed, or a rebuild was interrupted).
    pub(in crate::store) fn ensure_search_index(&self) -> Result<(), StoreError> {
        if self.trees.meta.get(META_KEY)?.as_deref() == Some(INDEX_VERSION) {
            return Ok(());
        }
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let started = std::time::Instant::now();
        let deliveries = self.rebuild_search_index()?;
        tracing::info!(deliveries, elapsed = ?started.elapsed(), "search index built");
        Ok(())
    }

    /// Rebuilds the whole index from the live messages, in the indexer's
    /// batches. The caller holds the writer lock. Returns how many
    /// deliveries were indexed.
    pub(in crate::store) fn rebuild_search_index(&self) -> Result<usize, StoreError> {
        self.trees.meta.remove(META_KEY)?;
        for tree in [
            &self.trees.search_postings,
            &self.trees.search_docs,
            &self.trees.search_shared,
            &self.trees.search_pending,
        ] {
            tree.clear()?;
        }
        let mut count = 0usize;
        let mut batch = Vec::new();
        for entry in message_rows::delivery_counts(&self.trees.deliveries) {
            let (key, _) = entry?;
            self.trees
                .search_pending
                .insert(key.as_slice(), &[] as &[u8])?;
            batch.push(self.prepare(&key)?);
            if batch.len() == REBUILD_BATCH {
                count += self.write_prepared(std::mem::take(&mut batch))?;
            }
        }
        count += self.write_prepared(batch)?;
        self.trees.meta.insert(META_KEY, INDEX_VERSION)?;
        self.db.flush()?;
        Ok(count)
    }

    /// fsck: every live delivery has its document or its pending entry
    /// (one of them) and no other document or pending entry exists; the
    /// shared lists name exactly the live messages of indexed shared
    /// deliveries. With `repair`, any difference rebuilds the index.
    /// The caller holds the writer lock.
    pub(in crate::store) fn check_search_index(
        &self,
        repair: bool,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        let before = report.problems.len();
        let (mut docs, mut pending, mut shared) = (0usize, 0usize, 0usize);
        for entry in message_rows::delivery_counts(&self.trees.deliveries) {
            let (key, _) = entry?;
            let live = self.delivery_messages(&key)?;
            if live.is_empty() {
                continue;
            }
            let queued = self.trees.search_pending.contains_key(&key)?;
            let doc = self
                .trees
                .search_docs
                .get(&key)?
                .map(|bytes| decode_doc(&bytes));
            let layout = match (doc, queued) {
                (Some(Ok((layout, _))), false) => {
                    docs += 1;
                    layout
                }
                (None, true) => {
                    pending += 1;
                    continue;
                }
                (Some(_), true) => {
                    report.problems.push(format!(
                        "search index: delivery {} is both indexed and waiting",
                        describe(&key)
                    ));
                    continue;
                }
                _ => {
                    report.problems.push(format!(
                        "search index: delivery {} has no searchable text",
                        describe(&key)
                    ));
                    continue;
                }
            };
            if layout == Layout::Shared {
                for (_, rec) in &live {
                    shared += 1;
                    if self
                        .trees
                        .search_shared
                        .get(shared_key(&rec.mailbox, &key, rec.target))?
                        .is_none()
                    {
                        report.problems.push(format!(
                            "search index: {} cannot find delivery {}",
                            rec.mailbox,
                            describe(&key)
                        ));
                    }
                }
            }
        }
        for (tree, what, count) in [
            (&self.trees.search_docs, "documents", docs),
            (&self.trees.search_pending, "waiting deliveries", pending),
        ] {
            if tree.len() != count {
                report.problems.push(format!(
                    "search index: {} {what} for {count} live deliveries",
                    tree.len()
                ));
            }
        }
        if self.trees.search_shared.len() != shared {
            report.problems.push(format!(
                "search index: {} shared entries for {shared} messages of shared deliveries",
                self.trees.search_shared.len()
            ));
        }
        if self.trees.meta.get(META_KEY)?.as_deref() != Some(INDEX_VERSION) {
            report
                .problems
                .push("search index: not built (or its build was interrupted)".into());
        }
        if repair && report.problems.len() > before {
            let n = self.rebuild_search_index()?;
            report
                .repaired
                .push(format!("search index rebuilt from {n} deliveries"));
        }
        Ok(())
    }
}

/// How a delivery's terms are posted: under each mailbox, or once for
/// the delivery with a `search_shared` entry per message. Decided when it
/// is indexed (by its live messages then) and kept with its document, so
/// fsck checks what was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Own,
    Shared,
}

impl Layout {
    pub fn for_messages(live: usize) -> Layout {
        if live > SHARED_ABOVE {
            Layout::Shared
        } else {
            Layout::Own
        }
    }
}

/// A `search_docs` value: the layout's byte, then the document.
pub fn encode_doc(layout: Layout, doc: &SearchDocument) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![match layout {
        Layout::Own => b'o',
        Layout::Shared => b's',
    }];
    out.extend(doc.encode()?);
    Ok(out)
}

pub fn decode_doc(bytes: &[u8]) -> Result<(Layout, SearchDocument), StoreError> {
    let layout = match bytes.first() {
        Some(b'o') => Layout::Own,
        Some(b's') => Layout::Shared,
        _ => return Err(StoreError::Corrupt("search document layout".into())),
    };
    Ok((layout, SearchDocument::decode(&bytes[1..])?))
}

/// The op id a delivery key (`origin \0 seq BE`) names.
pub(super) fn op_of_key(key: &[u8]) -> Option<OpId> {
    let p = key.iter().position(|&b| b == 0)?;
    let seq: [u8; 8] = key.get(p + 1..)?.try_into().ok()?;
    Some(OpId {
        origin: std::str::from_utf8(&key[..p]).ok()?.to_string(),
        seq: u64::from_be_bytes(seq),
    })
}

/// A delivery key as people read it (`origin.seq`).
fn describe(key: &[u8]) -> String {
    match key.iter().position(|&b| b == 0) {
        Some(p) if key.len() == p + 9 => {
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&key[p + 1..]);
            format!(
                "{}.{:x}",
                String::from_utf8_lossy(&key[..p]),
                u64::from_be_bytes(seq)
            )
        }
        _ => String::from_utf8_lossy(key).into_owned(),
    }
}
