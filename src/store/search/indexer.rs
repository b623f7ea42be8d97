//! The indexer: turns queued deliveries (`search_pending`) into postings,
//! documents and shared entries, many deliveries per batch.
//!
//! A batch has two steps:
//! 1. without any lock, read each queued delivery's message bytes and
//!    normalize its text (`prepare_delivery`): the slow part, done while
//!    deliveries go on;
//! 2. under the store's writer lock, so no op changes what it checks
//!    (`write_prepared`): keep the deliveries still queued, find which of
//!    their messages are still alive, gather every posting by (scope,
//!    term, origin), write each term's chunks once for the whole batch,
//!    then the documents and shared entries, and remove the pending
//!    entries, all in one sled transaction: after a crash a delivery is
//!    either indexed or still queued (tests/store.rs kills the process
//!    during deliveries and runs fsck).
//!
//! Everything is read from the message and delivery rows, never from the
//! op log: a store seeded from a snapshot has rows (and queued entries)
//! for deliveries whose ops it never held.
//!
//! Nothing here is flushed: the index is derived state that the next
//! delivery's flush makes durable, and a lost batch is still queued.
//!
//! The mailbox role runs `index_pending` on its own thread
//! (`mailbox::search_indexer`); tests and the rebuild call it directly.
//! Queries never depend on it: they read pending deliveries themselves.

use std::collections::HashMap;

use sled::Transactional;

use super::index::{decode_doc, encode_doc, message_number, op_of_key, shared_key, Layout};
use super::postings::{self, Scope};
use super::text::{SearchDocument, Term};
use crate::store::id::MessageId;
use crate::store::{Store, StoreError};

/// One queued delivery, read and normalized.
pub(super) struct PreparedDelivery {
    key: Vec<u8>,
    doc: SearchDocument,
}

/// Whose postings a batch gathers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ScopeKey {
    Mailbox(String),
    Shared,
}

impl Store {
    /// Indexes up to `max` queued deliveries, oldest first; returns how
    /// many were taken off the queue.
    pub fn index_pending(&self, max: usize) -> Result<usize, StoreError> {
        let mut batch = Vec::new();
        for entry in self.trees.search_pending.iter().take(max) {
            let (key, _) = entry?;
            batch.push(self.prepare(&key)?);
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        self.write_prepared(batch)
    }

    /// Deliveries waiting for the indexer.
    pub fn search_backlog(&self) -> usize {
        self.trees.search_pending.len()
    }

    /// Step 1 of a batch for one queued delivery. With no live message the
    /// text is empty: `write_prepared` drops the entry if that is still so
    /// under the lock.
    pub(super) fn prepare(&self, key: &[u8]) -> Result<PreparedDelivery, StoreError> {
        Ok(PreparedDelivery {
            key: key.to_vec(),
            doc: self.prepare_delivery(key)?.unwrap_or_default(),
        })
    }

    /// The text of the delivery with log key `key`, read from its first
    /// live message (all of a delivery's messages share their bytes);
    /// None when none is live.
    pub(super) fn prepare_delivery(
        &self,
        key: &[u8],
    ) -> Result<Option<SearchDocument>, StoreError> {
        Ok(self
            .delivery_messages(key)?
            .first()
            .map(|(_, rec)| self.search_document_of(rec)))
    }

    /// Step 2 of a batch (see the module comment). The caller holds the
    /// writer lock. Returns how many deliveries left the queue.
    pub(super) fn write_prepared(&self, batch: Vec<PreparedDelivery>) -> Result<usize, StoreError> {
        let mut gathered: HashMap<(ScopeKey, Term, String), Vec<u64>> = HashMap::new();
        let mut docs = sled::Batch::default();
        let mut shared = sled::Batch::default();
        let mut done = sled::Batch::default();
        let mut count = 0usize;
        for p in batch {
            if !self.trees.search_pending.contains_key(&p.key)? {
                continue; // indexed meanwhile, or its last message deleted
            }
            count += 1;
            done.remove(p.key.as_slice());
            let live = self.delivery_messages(&p.key)?;
            let Some(op) = op_of_key(&p.key) else {
                continue;
            };
            if live.is_empty() {
                continue;
            }
            let layout = Layout::for_messages(live.len());
            docs.insert(p.key.as_slice(), encode_doc(layout, &p.doc)?);
            let terms = p.doc.terms();
            if layout == Layout::Shared {
                for (_, rec) in &live {
                    shared.insert(shared_key(&rec.mailbox, &p.key, rec.target), &[] as &[u8]);
                }
                for term in terms {
                    gathered
                        .entry((ScopeKey::Shared, term, op.origin.clone()))
                        .or_default()
                        .push(op.seq);
                }
                continue;
            }
            for (id, rec) in &live {
                let number = message_number(id)?;
                for term in &terms {
                    gathered
                        .entry((
                            ScopeKey::Mailbox(rec.mailbox.clone()),
                            term.clone(),
                            op.origin.clone(),
                        ))
                        .or_default()
                        .push(number);
                }
            }
        }
        let mut chunks = sled::Batch::default();
        for ((scope, term, origin), numbers) in gathered {
            let scope = match &scope {
                ScopeKey::Mailbox(m) => Scope::Mailbox(m),
                ScopeKey::Shared => Scope::Shared,
            };
            postings::append(
                &self.trees.search_postings,
                &mut chunks,
                scope,
                &term,
                &origin,
                numbers,
            )?;
        }
        // One transaction: a crash leaves the batch all written or not at
        // all (the deliveries are then still queued), never a document
        // beside its pending entry.
        let trees = (
            &self.trees.search_postings,
            &self.trees.search_docs,
            &self.trees.search_shared,
            &self.trees.search_pending,
        );
        trees
            .transaction(|(postings, documents, shared_entries, pending)| {
                postings.apply_batch(&chunks)?;
                documents.apply_batch(&docs)?;
                shared_entries.apply_batch(&shared)?;
                pending.apply_batch(&done)?;
                Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
            })
            .map_err(StoreError::from_tx)?;
        Ok(count)
    }

    /// The messages of `user` in deliveries still waiting for the indexer,
    /// as (sequence, id): candidates for every query, since their terms
    /// are not posted yet.
    pub(super) fn pending_candidates(
        &self,
        user: &str,
    ) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.trees.search_pending.iter() {
            let (key, _) = entry?;
            for (id, rec) in self.delivery_messages(&key)? {
                if rec.mailbox == user {
                    out.push((message_number(&id)?, id));
                }
            }
        }
        Ok(out)
    }

    /// The text of a delivery for verifying a candidate: its stored
    /// document, or, while it waits for the indexer, read from its bytes.
    pub(super) fn document_for_query(
        &self,
        delivery: &[u8],
    ) -> Result<Option<SearchDocument>, StoreError> {
        if let Some(bytes) = self.trees.search_docs.get(delivery)? {
            return Ok(Some(decode_doc(&bytes)?.1));
        }
        if !self.trees.search_pending.contains_key(delivery)? {
            return Ok(None);
        }
        self.prepare_delivery(delivery)
    }
}
