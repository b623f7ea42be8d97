//! Sort orders other than arrival (sender, subject, size), and the index
//! that makes them fast on big folders.
//!
//! Small folders are sorted in memory: their listing is read, each
//! message's sort key computed and the keys sorted, which costs a few
//! milliseconds at `IN_MEMORY_MAX` messages. A folder gets a persistent
//! index only when it is first listed in such an order while it holds
//! more than that; from then on (it is marked in `sorted_folders`) the
//! index is kept up to date with every message placed in or taken out of
//! it. So the 30,000 one-message inboxes of an announcement pay nothing
//! for sorting, and a 100,000-message folder pages from the index.
//!
//! Index keys in `sort_index`: `kind mailbox \0 folder \0 sortkey \0 !ts
//! id` for `kind` = sender (f), subject (s), size (z), with empty values
//! (the id is the key's tail). Sender and subject keys are lower-cased and
//! cut to `TEXT_KEY` bytes (never containing a 0 byte, so the 0 after
//! them keeps shorter keys first); size is 8 bytes big-endian. The same
//! key bytes order the in-memory sort, so both paths list alike.
//!
//! **Invariant:** a folder marked in `sorted_folders` has exactly one
//! index entry per order for each of its messages; an unmarked folder has
//! none (checked by fsck). The mark and the entries of a folder are
//! written in one transaction, under the writer lock.

use sled::Transactional;

use super::id::MessageId;
use super::listing::{ListOrder, SortKey};
use super::state::{folder_prefix, stats_key, MessageRecord, Tx, TxResult};
use super::{Store, StoreError};

/// Bytes of a sender or subject kept in its sort key.
const TEXT_KEY: usize = 48;
/// Largest folder sorted in memory instead of through an index.
pub const IN_MEMORY_MAX: usize = 1_000;

impl SortKey {
    /// First byte of this order's keys in `sort_index` (Date has none).
    pub(crate) fn kind(self) -> Option<u8> {
        match self {
            SortKey::Date => None,
            SortKey::From => Some(b'f'),
            SortKey::Subject => Some(b's'),
            SortKey::Size => Some(b'z'),
        }
    }
}

/// `kind mailbox \0 folder \0`: one folder's entries of one sort order.
pub fn index_prefix(kind: u8, mailbox: &str, folder: &str) -> Vec<u8> {
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

/// The index key of a message for one order (`kind` from `SortKey::kind`).
pub fn entry(kind: u8, rec: &MessageRecord, id: &MessageId) -> Vec<u8> {
    let mut k = index_prefix(kind, &rec.mailbox, &rec.folder);
    match kind {
        b'z' => k.extend_from_slice(&rec.size.to_be_bytes()),
        b'f' => {
            k.extend_from_slice(&text_key(sender_text(&rec.summary.from)));
            k.push(0);
        }
        _ => {
            k.extend_from_slice(&text_key(base_subject(&rec.summary.subject)));
            k.push(0);
        }
    }
    k.extend(rec.ts.to_be_bytes().iter().map(|b| !b));
    k.extend_from_slice(id.as_bytes());
    k
}

/// The index keys of a message in its current folder, every order.
pub fn entries(rec: &MessageRecord, id: &MessageId) -> [Vec<u8>; 3] {
    [
        entry(b'f', rec, id),
        entry(b's', rec, id),
        entry(b'z', rec, id),
    ]
}

/// The message id at the end of an index key under `prefix`.
pub fn id_of(kind: u8, prefix: &[u8], key: &[u8]) -> Result<MessageId, StoreError> {
    let bad = || StoreError::Corrupt("sort index entry".into());
    let rest = key.get(prefix.len()..).ok_or_else(bad)?;
    let sort_len = match kind {
        b'z' => 8,
        _ => rest.iter().position(|b| *b == 0).ok_or_else(bad)? + 1,
    };
    let tail = rest.get(sort_len + 12..).ok_or_else(bad)?;
    std::str::from_utf8(tail).map_err(|_| bad())?.parse()
}

/// Is `mailbox`/`folder` indexed (inside an op's transaction)?
fn tx_indexed(tx: &Tx, mailbox: &str, folder: &str) -> TxResult<bool> {
    Ok(tx.sorted_folders.get(stats_key(mailbox, folder))?.is_some())
}

/// Adds a message's index entries if its folder is indexed.
pub fn tx_place(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    if tx_indexed(tx, &rec.mailbox, &rec.folder)? {
        for key in entries(rec, id) {
            tx.sort_index.insert(key, &[] as &[u8])?;
        }
    }
    Ok(())
}

/// Removes a message's index entries (if its folder is indexed).
pub fn tx_unplace(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    if tx_indexed(tx, &rec.mailbox, &rec.folder)? {
        for key in entries(rec, id) {
            tx.sort_index.remove(key)?;
        }
    }
    Ok(())
}

impl Store {
    /// Ids of one page of a folder in a sort order other than arrival:
    /// from the index for big folders (built on first use), else sorted in
    /// memory. `total` is the folder's message count.
    pub(crate) fn sorted_page_ids(
        &self,
        user: &str,
        folder: &str,
        order: ListOrder,
        total: usize,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let Some(kind) = order.key.kind() else {
            return Err(StoreError::InvalidOp("arrival order has no index".into()));
        };
        let key = stats_key(user, folder);
        if total > IN_MEMORY_MAX && !self.trees.sorted_folders.contains_key(&key)? {
            self.build_sort_index(user, folder)?;
        }
        if !self.trees.sorted_folders.contains_key(&key)? {
            return self.sorted_in_memory(user, folder, order, kind, offset, limit);
        }
        let prefix = index_prefix(kind, user, folder);
        let keys = super::listing::page_of_keys(
            &self.trees.sort_index,
            &prefix,
            order.descending,
            total,
            offset,
            limit,
        )?;
        keys.iter().map(|k| id_of(kind, &prefix, k)).collect()
    }

    fn sorted_in_memory(
        &self,
        user: &str,
        folder: &str,
        order: ListOrder,
        kind: u8,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let mut keyed = Vec::new();
        for id in self.folder_message_ids(user, folder)? {
            if let Some(rec) = self.record(&id)? {
                keyed.push((entry(kind, &rec, &id), id));
            }
        }
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if order.descending {
            keyed.reverse();
        }
        Ok(keyed
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, id)| id)
            .collect())
    }

    /// Indexes every message of a folder and marks it, in one
    /// transaction, under the writer lock (so no op changes the folder
    /// meanwhile).
    pub(crate) fn build_sort_index(&self, user: &str, folder: &str) -> Result<(), StoreError> {
        let _w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let mark = stats_key(user, folder);
        if self.trees.sorted_folders.contains_key(&mark)? {
            return Ok(());
        }
        let mut keys = Vec::new();
        for id in self.folder_message_ids(user, folder)? {
            if let Some(rec) = self.record(&id)? {
                keys.extend(entries(&rec, &id));
            }
        }
        (&self.trees.sort_index, &self.trees.sorted_folders)
            .transaction(|(index, marks)| {
                for k in &keys {
                    index.insert(k.as_slice(), &[] as &[u8])?;
                }
                marks.insert(mark.as_slice(), &[] as &[u8])?;
                Ok(())
            })
            .map_err(StoreError::from_tx)?;
        self.db.flush()?;
        tracing::info!(
            mailbox = user,
            folder,
            messages = keys.len() / 3,
            "folder sort index built"
        );
        Ok(())
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
