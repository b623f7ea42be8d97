//! Keeping the search index: written inside the op's transaction when a
//! `Deliver` or `Expunge` is applied, rebuilt from the messages when it is
//! missing (a store from before search existed) or when fsck repairs it.
//!
//! Trees (besides `search_postings`, see `postings.rs`):
//! - `search_docs`: delivery key (`origin \0 seq BE`, as in `deliveries`)
//!   -> the delivery's [`SearchDocument`] (normalized text), once per
//!   delivery however many mailboxes got it; removed with the delivery's
//!   last message;
//! - `search_shared`: `mailbox \0 delivery key target (u32 BE)` -> empty,
//!   one entry per recipient of a delivery to more than [`SHARED_ABOVE`]
//!   mailboxes: the small per-mailbox list through which a user finds the
//!   announcements they got, whose terms are posted once (scope `Shared`).
//!
//! `meta` key `search_index` holds [`INDEX_VERSION`] once a rebuild has
//! finished; a store opened without it rebuilds the index first.
//!
//! **Invariant:** every live delivery has its document; every live message
//! of a shared delivery has its `search_shared` entry and no other entry
//! exists (fsck checks both). Postings may name deleted messages; queries
//! filter them (see `postings.rs`).

use std::collections::HashMap;

use super::postings::{self, Scope};
use super::text::{SearchDocument, Term};
use crate::store::id::{MessageId, OpId};
use crate::store::message_rows::{self, MessageRecord};
use crate::store::op::{Op, ReplicationOp};
use crate::store::state::{abort, Tx, TxResult};
use crate::store::threads::THREAD_TARGETS_MAX;
use crate::store::{FsckReport, Store, StoreError};

/// Deliveries to more than this many mailboxes are indexed once.
pub const SHARED_ABOVE: usize = THREAD_TARGETS_MAX;
/// Written to `meta` once the index is complete.
pub const INDEX_VERSION: &[u8] = &[1];
const META_KEY: &[u8] = b"search_index";
#[cfg(test)]
pub const INDEX_VERSION_KEY_FOR_TESTS: &[u8] = META_KEY;
/// Postings a rebuild gathers in memory before writing them out.
const REBUILD_BATCH: usize = 2_000_000;

/// `mailbox \0`: one mailbox's shared deliveries.
pub fn shared_prefix(mailbox: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(mailbox.len() + 20);
    k.extend_from_slice(mailbox.as_bytes());
    k.push(0);
    k
}

fn shared_key(mailbox: &str, delivery: &[u8], target: u32) -> Vec<u8> {
    let mut k = shared_prefix(mailbox);
    k.extend_from_slice(delivery);
    k.extend_from_slice(&target.to_be_bytes());
    k
}

/// The number a message is posted under in its mailbox's scope.
fn message_number(id: &MessageId) -> Result<u64, StoreError> {
    Ok(id.op_id()?.seq)
}

/// Indexes the messages a `Deliver` op just made (`delivered`: only the
/// targets that were new here) from `doc`.
pub fn tx_index_delivery(
    tx: &Tx,
    op: &ReplicationOp,
    targets: usize,
    delivered: &[(MessageId, MessageRecord)],
    doc: &SearchDocument,
) -> TxResult<()> {
    if delivered.is_empty() {
        return Ok(());
    }
    let delivery = op.id.log_key();
    tx.search_docs
        .insert(delivery.as_slice(), doc.encode().or_else(abort)?)?;
    let terms = doc.terms();
    let origin = &op.id.origin;
    if targets > SHARED_ABOVE {
        for term in &terms {
            postings::tx_append(tx.search_postings, Scope::Shared, term, origin, op.id.seq)?;
        }
        for (_, rec) in delivered {
            tx.search_shared.insert(
                shared_key(&rec.mailbox, &delivery, rec.target),
                &[] as &[u8],
            )?;
        }
        return Ok(());
    }
    for (id, rec) in delivered {
        let number = message_number(id).or_else(abort)?;
        for term in &terms {
            postings::tx_append(
                tx.search_postings,
                Scope::Mailbox(&rec.mailbox),
                term,
                origin,
                number,
            )?;
        }
    }
    Ok(())
}

/// Forgets a deleted message: its shared entry, and its delivery's
/// document when it was the delivery's last message (`tx.deliveries` no
/// longer has the row).
pub fn tx_unindex(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    let delivery = message_rows::delivery_key(id, rec).or_else(abort)?;
    tx.search_shared
        .remove(shared_key(&rec.mailbox, &delivery, rec.target))?;
    if tx.deliveries.get(&delivery)?.is_none() {
        tx.search_docs.remove(delivery)?;
    }
    Ok(())
}

/// Whose postings a rebuild gathers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ScopeKey {
    Mailbox(String),
    Shared,
}

/// One live delivery as the rebuild sees it.
struct LiveDelivery {
    key: Vec<u8>,
    op: OpId,
    targets: usize,
    doc: SearchDocument,
    messages: Vec<(MessageId, MessageRecord)>,
}

impl Store {
    /// The document of a `Deliver` about to be applied from elsewhere: its
    /// bytes are stored already (`put_blob` comes first), else what the op
    /// says.
    pub(in crate::store) fn search_document_of(
        &self,
        op: &ReplicationOp,
    ) -> Option<SearchDocument> {
        let Op::Deliver { blob, summary, .. } = &op.op else {
            return None;
        };
        match self.blobs.get(blob) {
            Ok(Some(raw)) => Some(SearchDocument::from_message(&raw)),
            Ok(None) => Some(SearchDocument::from_summary(summary)),
            Err(err) => {
                tracing::warn!(%err, "message bytes unreadable for the search index");
                Some(SearchDocument::from_summary(summary))
            }
        }
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

    /// Rebuilds the whole index from the live messages. The caller holds
    /// the writer lock. Returns how many deliveries were indexed.
    pub(in crate::store) fn rebuild_search_index(&self) -> Result<usize, StoreError> {
        self.trees.meta.remove(META_KEY)?;
        postings::clear(&self.trees.search_postings)?;
        self.trees.search_docs.clear()?;
        self.trees.search_shared.clear()?;
        let mut gathered: HashMap<(ScopeKey, Term, String), Vec<u64>> = HashMap::new();
        let mut pending = 0usize;
        let mut count = 0usize;
        for entry in message_rows::delivery_counts(&self.trees.deliveries) {
            let (key, _) = entry?;
            let Some(live) = self.live_delivery(&key)? else {
                continue;
            };
            count += 1;
            self.trees
                .search_docs
                .insert(live.key.as_slice(), live.doc.encode()?)?;
            let mut batch = sled::Batch::default();
            let terms = live.doc.terms();
            if live.targets > SHARED_ABOVE {
                for (_, rec) in &live.messages {
                    batch.insert(
                        shared_key(&rec.mailbox, &live.key, rec.target),
                        &[] as &[u8],
                    );
                }
                for term in &terms {
                    gathered
                        .entry((ScopeKey::Shared, term.clone(), live.op.origin.clone()))
                        .or_default()
                        .push(live.op.seq);
                }
                pending += terms.len();
            } else {
                for (id, rec) in &live.messages {
                    let number = message_number(id)?;
                    for term in &terms {
                        gathered
                            .entry((
                                ScopeKey::Mailbox(rec.mailbox.clone()),
                                term.clone(),
                                live.op.origin.clone(),
                            ))
                            .or_default()
                            .push(number);
                    }
                    pending += terms.len();
                }
            }
            self.trees.search_shared.apply_batch(batch)?;
            if pending >= REBUILD_BATCH {
                self.write_gathered(&mut gathered)?;
                pending = 0;
            }
        }
        self.write_gathered(&mut gathered)?;
        self.trees.meta.insert(META_KEY, INDEX_VERSION)?;
        self.db.flush()?;
        Ok(count)
    }

    fn write_gathered(
        &self,
        gathered: &mut HashMap<(ScopeKey, Term, String), Vec<u64>>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for ((scope, term, origin), mut numbers) in gathered.drain() {
            numbers.sort_unstable();
            numbers.dedup();
            let scope = match &scope {
                ScopeKey::Mailbox(m) => Scope::Mailbox(m),
                ScopeKey::Shared => Scope::Shared,
            };
            postings::write_sealed(&mut batch, scope, &term, &origin, &numbers);
        }
        self.trees.search_postings.apply_batch(batch)?;
        Ok(())
    }

    /// A delivery's live messages, its target count and its document.
    fn live_delivery(&self, key: &[u8]) -> Result<Option<LiveDelivery>, StoreError> {
        let Some((op, targets, messages)) = self.live_delivery_rows(key)? else {
            return Ok(None);
        };
        let doc = self.search_document_of(&op).unwrap_or_default();
        Ok(Some(LiveDelivery {
            key: key.to_vec(),
            targets,
            op: op.id,
            doc,
            messages,
        }))
    }

    /// fsck: every live delivery has its document and no other document
    /// exists; the shared lists name exactly the live messages of shared
    /// deliveries. With `repair`, any difference rebuilds the index.
    /// The caller holds the writer lock.
    pub(in crate::store) fn check_search_index(
        &self,
        repair: bool,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        let before = report.problems.len();
        let mut docs = 0usize;
        let mut shared = 0usize;
        for entry in message_rows::delivery_counts(&self.trees.deliveries) {
            let (key, _) = entry?;
            let Some(live) = self.live_delivery_rows(&key)? else {
                continue;
            };
            docs += 1;
            match self.trees.search_docs.get(&key)? {
                Some(doc) if SearchDocument::decode(&doc).is_ok() => {}
                _ => report.problems.push(format!(
                    "search index: delivery {} has no searchable text",
                    describe(&key)
                )),
            }
            if live.1 > SHARED_ABOVE {
                for (_, rec) in &live.2 {
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
        if self.trees.search_docs.len() != docs {
            report.problems.push(format!(
                "search index: {} documents for {docs} live deliveries",
                self.trees.search_docs.len()
            ));
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

    /// (op, target count, live messages) of a delivery, without its text.
    #[allow(clippy::type_complexity)]
    fn live_delivery_rows(
        &self,
        key: &[u8],
    ) -> Result<Option<(ReplicationOp, usize, Vec<(MessageId, MessageRecord)>)>, StoreError> {
        let Some(op) = self.trees.oplog.get(key)? else {
            return Ok(None);
        };
        let op = ReplicationOp::decode(&op)?;
        let Op::Deliver { targets, .. } = &op.op else {
            return Ok(None);
        };
        let mut messages = Vec::new();
        for id in op.delivered_ids() {
            if let Some(rec) = self.record(&id)? {
                messages.push((id, rec));
            }
        }
        let targets = targets.len();
        Ok((!messages.is_empty()).then_some((op, targets, messages)))
    }
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
