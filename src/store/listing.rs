//! Folder listings and their sort orders.
//!
//! Owns, for every message, its entries in three derived trees, always
//! written together by `place`/`unplace` inside the op's transaction:
//! - `folders`: `mailbox \0 folder \0 !ts id` (newest delivery first, the
//!   "date" order; `state::folder_entry_key`);
//! - `sort_index`: `kind mailbox \0 folder \0 sortkey \0 !ts id` for
//!   `kind` = sender, subject, size. Sender and subject keys are lower-cased
//!   and cut to `TEXT_KEY` bytes (never containing a 0 byte, so the 0 after
//!   them keeps shorter keys first); size is 8 bytes big-endian;
//! - `orphans` (`folders.rs`): for a message waiting for a folder;
//!
//! plus the folder's counts in `folder_stats`.
//!
//! **Invariant:** a message has exactly one entry in each listing tree,
//! under its current folder, and the folder counts equal what the entries
//! add up to (checked by fsck). Paging walks the index from the nearer
//! end, so the first and last pages of a 100,000-message folder cost the
//! same; a page in the middle costs a walk over the keys before it (no
//! message records or bytes are read for them).

use sled::IVec;

use super::id::MessageId;
use super::state::{
    self, abort, bump_folder, encode, folder_entry_key, folder_prefix, is_seen, MessageRecord,
    Trees, Tx, TxResult,
};
use super::{MessagePage, Store, StoreError};

/// Bytes of a sender or subject kept in its sort key.
const TEXT_KEY: usize = 48;
/// `meta` key set once the sort index was built for older stores.
const SORT_INDEX_BUILT: &[u8] = b"sort_index_v1";

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

impl SortKey {
    /// First byte of this order's keys in `sort_index` (Date has none).
    fn kind(self) -> Option<u8> {
        match self {
            SortKey::Date => None,
            SortKey::From => Some(b'f'),
            SortKey::Subject => Some(b's'),
            SortKey::Size => Some(b'z'),
        }
    }
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

/// `kind mailbox \0 folder \0`: one folder's entries of one sort order.
fn index_prefix(kind: u8, mailbox: &str, folder: &str) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(&folder_prefix(mailbox, folder));
    k
}

/// The sender as people read it: the display name, else the address.
fn sender_text(from: &str) -> &str {
    let name = from
        .split('<')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    if name.is_empty() {
        from.trim().trim_matches(|c| c == '<' || c == '>')
    } else {
        name
    }
}

/// The subject without reply and forward prefixes (RFC 5256 §2.1 in
/// spirit; Korean clients' "답장:"/"전달:" too).
fn base_subject(subject: &str) -> &str {
    const PREFIXES: [&str; 5] = ["re:", "fw:", "fwd:", "답장:", "전달:"];
    let mut s = subject.trim();
    'strip: loop {
        for p in PREFIXES {
            let head = s.get(..p.len());
            let rest = s.get(p.len()..).map(str::trim_start).unwrap_or("");
            if head.is_some_and(|h| h.eq_ignore_ascii_case(p)) && !rest.is_empty() {
                s = rest;
                continue 'strip;
            }
        }
        return s;
    }
}

/// A text sort key: lower case, no 0 bytes, at most `TEXT_KEY` bytes (cut
/// at a character boundary).
fn text_key(text: &str) -> Vec<u8> {
    let mut out = String::with_capacity(TEXT_KEY);
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if c == '\0' { ' ' } else { c };
        if out.len() + c.len_utf8() > TEXT_KEY {
            break;
        }
        out.push(c);
    }
    out.into_bytes()
}

/// The `sort_index` keys of a message in its current folder.
pub fn sort_entries(rec: &MessageRecord, id: &MessageId) -> [Vec<u8>; 3] {
    let tail = |mut k: Vec<u8>| {
        k.extend(rec.ts.to_be_bytes().iter().map(|b| !b));
        k.extend_from_slice(id.as_bytes());
        k
    };
    let text = |kind: u8, text: &str| {
        let mut k = index_prefix(kind, &rec.mailbox, &rec.folder);
        k.extend_from_slice(&text_key(text));
        k.push(0);
        tail(k)
    };
    let mut size = index_prefix(b'z', &rec.mailbox, &rec.folder);
    size.extend_from_slice(&rec.size.to_be_bytes());
    [
        text(b'f', sender_text(&rec.summary.from)),
        text(b's', base_subject(&rec.summary.subject)),
        tail(size),
    ]
}

/// Lists a message under its folder: listing, sort index, orphan entry,
/// counts. The message record itself is written by the caller.
pub fn place(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    tx.folders
        .insert(folder_entry_key(rec, id), id.as_bytes())?;
    for key in sort_entries(rec, id) {
        tx.sort_index.insert(key, id.as_bytes())?;
    }
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
    for key in sort_entries(rec, id) {
        tx.sort_index.remove(key)?;
    }
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
    tx.messages
        .insert(id.as_bytes(), encode(new).or_else(abort)?)?;
    Ok(())
}

/// Builds the sort index of a store made before it existed (once).
pub fn backfill(trees: &Trees) -> Result<(), StoreError> {
    if trees.meta.get(SORT_INDEX_BUILT)?.is_some() {
        return Ok(());
    }
    for entry in trees.messages.iter() {
        let (key, value) = entry?;
        let rec: MessageRecord = state::decode(&value)?;
        let id: MessageId = std::str::from_utf8(&key)
            .map_err(|_| StoreError::Corrupt("message key".into()))?
            .parse()?;
        for k in sort_entries(&rec, &id) {
            trees.sort_index.insert(k, id.as_bytes())?;
        }
    }
    trees.meta.insert(SORT_INDEX_BUILT, &[1u8][..])?;
    trees.sort_index.flush()?;
    Ok(())
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
        let (tree, prefix, reverse) = match order.key.kind() {
            // `folders` is newest first already.
            None => (
                &self.trees.folders,
                folder_prefix(user, folder),
                !order.descending,
            ),
            Some(kind) => (
                &self.trees.sort_index,
                index_prefix(kind, user, folder),
                order.descending,
            ),
        };
        // A page in the second half is read from the other end, so the
        // last page costs what the first does (`total` is the entry count,
        // an fsck-checked invariant).
        let total_n = usize::try_from(total).unwrap_or(usize::MAX);
        let from_end = offset > total_n / 2 && offset < total_n;
        let (reverse, skip, take) = if from_end {
            let take = limit.min(total_n - offset);
            (!reverse, total_n - offset - take, take)
        } else {
            (reverse, offset, limit)
        };
        let scan = tree.scan_prefix(prefix);
        let entries: Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>>> = if reverse {
            Box::new(scan.rev())
        } else {
            Box::new(scan)
        };
        let mut messages = Vec::with_capacity(take.min(1000));
        for entry in entries.skip(skip).take(take) {
            let (_, id) = entry?;
            let id: MessageId = std::str::from_utf8(&id)
                .map_err(|_| StoreError::Corrupt("folder entry".into()))?
                .parse()?;
            if let Some(rec) = self.record(&id)? {
                messages.push(self.summary(id, &rec)?);
            }
        }
        if from_end {
            messages.reverse();
        }
        Ok(MessagePage {
            messages,
            total: total_n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_lose_reply_prefixes() {
        assert_eq!(base_subject("Re: RE: Fwd: hello"), "hello");
        assert_eq!(base_subject("답장: 전달: 안내"), "안내");
        assert_eq!(base_subject("Reply all"), "Reply all");
        assert_eq!(base_subject("re:"), "re:");
        assert_eq!(base_subject("  "), "");
    }

    #[test]
    fn senders_sort_by_display_name() {
        assert_eq!(sender_text("\"Kim Minji\" <kim@x>"), "Kim Minji");
        assert_eq!(sender_text("<lee@x>"), "lee@x");
        assert_eq!(sender_text("park@x"), "park@x");
    }

    #[test]
    fn text_keys_are_short_lower_case_and_zero_free() {
        assert_eq!(text_key("ABC\0d"), b"abc d".to_vec());
        let long = "가".repeat(40);
        let k = text_key(&long);
        assert!(k.len() <= TEXT_KEY);
        assert!(std::str::from_utf8(&k).is_ok());
    }
}
