//! Folder listings: the arrival order, and where every message is listed.
//!
//! Owns, for every message, its entries in the derived trees, always
//! written together by `place`/`unplace` inside the op's transaction:
//! - `folders`: `mailbox \0 folder \0 !ts id` -> empty (newest delivery
//!   first, the "date" order; `state::folder_entry_key`; the id is the
//!   key's tail after the 12-byte timestamp);
//! - `sort_index` (`sort_index.rs`), for folders that have one;
//! - the grouped list's `thread_heads`, `thread_members`, `thread_tips`
//!   (`thread_heads.rs`);
//! - `orphans` (`folders.rs`): for a message waiting for a folder;
//!
//! plus the folder's counts in `folder_stats`.
//!
//! **Invariant:** a message has exactly one entry in `folders`, under its
//! current folder, and the folder counts equal what the entries add up to
//! (checked by fsck). Paging walks the listing from the nearer end, so
//! the first and last pages of a 100,000-message folder cost the same; a
//! page in the middle costs a walk over the keys before it (no message
//! records or bytes are read for them).

use sled::IVec;

use super::id::MessageId;
use super::sort_index;
use super::state::{
    self, bump_folder, folder_entry_key, folder_prefix, is_seen, MessageRecord, Tx, TxResult,
};
use super::{MessagePage, Store, StoreError};

/// What a folder listing is ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Arrival order (the order mail was delivered or saved here).
    #[default]
    Date,
    From,
    Subject,
    Size,
}

/// A sort key and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListOrder {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for ListOrder {
    /// Newest first.
    fn default() -> ListOrder {
        ListOrder {
            key: SortKey::Date,
            descending: true,
        }
    }
}

/// The keys of one page of the `total` entries under `prefix` in `tree`,
/// in key order (`reverse`: from the last key). A page in the second half
/// is read from the other end, so the last page costs what the first does
/// (`total` is the entry count, an fsck-checked invariant).
pub fn page_of_keys(
    tree: &sled::Tree,
    prefix: &[u8],
    reverse: bool,
    total: usize,
    offset: usize,
    limit: usize,
) -> Result<Vec<IVec>, StoreError> {
    let from_end = offset > total / 2 && offset < total;
    let (reverse, skip, take) = if from_end {
        let take = limit.min(total - offset);
        (!reverse, total - offset - take, take)
    } else {
        (reverse, offset, limit)
    };
    let scan = tree.scan_prefix(prefix);
    let entries: Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>>> = if reverse {
        Box::new(scan.rev())
    } else {
        Box::new(scan)
    };
    let mut keys = Vec::with_capacity(take.min(1000));
    for entry in entries.skip(skip).take(take) {
        keys.push(entry?.0);
    }
    if from_end {
        keys.reverse();
    }
    Ok(keys)
}

/// The message id at the end of a `folders` key under `prefix`.
pub fn listed_id(prefix: &[u8], key: &[u8]) -> Result<MessageId, StoreError> {
    let bad = || StoreError::Corrupt("folder listing entry".into());
    let tail = key.get(prefix.len() + 12..).ok_or_else(bad)?;
    std::str::from_utf8(tail).map_err(|_| bad())?.parse()
}

/// Lists a message under its folder: listing, sort index, orphan entry,
/// counts. The message record itself is written by the caller.
pub fn place(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    tx.folders.insert(folder_entry_key(rec, id), &[] as &[u8])?;
    sort_index::tx_place(tx, id, rec)?;
    super::thread_heads::tx_place(tx, id, rec)?;
    if let Some(wanted) = &rec.wanted {
        tx.orphans.insert(
            super::folders::orphan_key(&rec.mailbox, wanted, id),
            &[] as &[u8],
        )?;
    }
    let unseen = if is_seen(tx.flags, id)? { 0 } else { 1 };
    bump_folder(tx.stats, &rec.mailbox, &rec.folder, 1, unseen)
}

/// Undoes `place`.
pub fn unplace(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    tx.folders.remove(folder_entry_key(rec, id))?;
    sort_index::tx_unplace(tx, id, rec)?;
    super::thread_heads::tx_unplace(tx, id, rec)?;
    if let Some(wanted) = &rec.wanted {
        tx.orphans
            .remove(super::folders::orphan_key(&rec.mailbox, wanted, id))?;
    }
    let unseen = if is_seen(tx.flags, id)? { 0 } else { 1 };
    bump_folder(tx.stats, &rec.mailbox, &rec.folder, -1, -unseen)
}

/// Replaces a message's record `old` by `new`, moving its listing entries
/// when its folder (or the folder it waits for) changed.
pub fn relocate(tx: &Tx, id: &MessageId, old: &MessageRecord, new: &MessageRecord) -> TxResult<()> {
    if old.folder != new.folder || old.wanted != new.wanted {
        unplace(tx, id, old)?;
        place(tx, id, new)?;
    }
    super::message_rows::tx_update(tx.messages, id, new)
}

impl Store {
    /// One page of a folder in `order`; `total` = messages in the folder.
    pub fn list_sorted(
        &self,
        user: &str,
        folder: &str,
        order: ListOrder,
        offset: usize,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        super::op::check_name("mailbox", user)?;
        super::op::check_name("folder", folder)?;
        let (total, _) = state::decode_stats(
            self.trees
                .folder_stats
                .get(state::stats_key(user, folder))?
                .as_deref(),
        );
        let total_n = usize::try_from(total).unwrap_or(usize::MAX);
        let ids = match order.key.kind() {
            None => self.arrival_page_ids(user, folder, order, total_n, offset, limit)?,
            Some(_) => self.sorted_page_ids(user, folder, order, total_n, offset, limit)?,
        };
        let mut messages = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(rec) = self.record(&id)? {
                messages.push(self.summary(id, &rec)?);
            }
        }
        Ok(MessagePage {
            messages,
            total: total_n,
        })
    }

    /// Ids of one page of a folder in arrival order (`folders` is newest
    /// first already).
    fn arrival_page_ids(
        &self,
        user: &str,
        folder: &str,
        order: ListOrder,
        total: usize,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let prefix = folder_prefix(user, folder);
        let keys = page_of_keys(
            &self.trees.folders,
            &prefix,
            !order.descending,
            total,
            offset,
            limit,
        )?;
        keys.iter().map(|k| listed_id(&prefix, k)).collect()
    }
}
