//! Posting lists: which messages hold a term, chunked and delta-encoded.
//!
//! Tree `search_postings`: `scope term \0 origin \0 first(8 bytes)` -> chunk.
//! - scope: `m mailbox \0` for the messages of one mailbox (the number is
//!   the message id's sequence number), or `s \0` for deliveries shared by
//!   more than `SHARED_ABOVE` mailboxes (the number is the delivery op's
//!   sequence number; who got it is in `search_shared`, see `index.rs`);
//! - first: the chunk's first number (big endian, so chunks sort by
//!   number and the last one is found by a reverse scan);
//! - chunk: numbers as zig-zag varint deltas, the first from 0. Numbers
//!   of one origin arrive in increasing order (its ops are applied and
//!   indexed in order), so deltas are small and positive; zig-zag keeps a
//!   replay in another order correct, only less compact.
//!
//! Only the indexer writes here, a batch at a time (`indexer.rs`), under
//! the store's writer lock: [`append`] adds a batch's numbers of one term
//! to the term's last chunk until it holds [`CHUNK_BYTES`], then starts
//! new ones. So a term costs one key per few dozen postings, and a batch
//! rewrites each term's last chunk once however many deliveries it holds.
//! Nothing is removed when a message is deleted: the query checks every
//! candidate against the live message, and fsck's repair (a rebuild)
//! drops the dead numbers.
//!
//! Untrusted input: none (keys and chunks are written only here); a damaged
//! chunk reads as `Corrupt`.

use std::collections::HashMap;

use super::text::Term;
use crate::store::StoreError;

/// A chunk takes no more numbers once it holds this many bytes.
pub const CHUNK_BYTES: usize = 64;

/// Whose postings: one mailbox's messages or the shared deliveries.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    Mailbox(&'a str),
    Shared,
}

fn scope_prefix(scope: Scope<'_>) -> Vec<u8> {
    match scope {
        Scope::Mailbox(m) => {
            let mut k = Vec::with_capacity(m.len() + 2);
            k.push(b'm');
            k.extend_from_slice(m.as_bytes());
            k.push(0);
            k
        }
        Scope::Shared => vec![b's', 0],
    }
}

/// `scope term \0`: every chunk of one term.
pub fn term_prefix(scope: Scope<'_>, term: &Term) -> Vec<u8> {
    let mut k = scope_prefix(scope);
    k.extend_from_slice(&term.0);
    k.push(0);
    k
}

/// `scope c`: every chunk of every term starting with `c`.
pub fn start_prefix(scope: Scope<'_>, c: char) -> Vec<u8> {
    let mut k = scope_prefix(scope);
    let mut buf = [0u8; 4];
    k.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    k
}

fn chunk_key(scope: Scope<'_>, term: &Term, origin: &str, first: [u8; 8]) -> Vec<u8> {
    let mut k = origin_prefix(scope, term, origin);
    k.extend_from_slice(&first);
    k
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(delta: i128) -> u64 {
    let d = delta.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The numbers of one chunk, in stored order.
pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::with_capacity(bytes.len());
    let (mut last, mut value, mut shift) = (0i64, 0u64, 0u32);
    for &b in bytes {
        if shift > 63 {
            return Err(StoreError::Corrupt("search posting chunk".into()));
        }
        value |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            last = last.wrapping_add(unzigzag(value));
            out.push(last as u64);
            value = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(StoreError::Corrupt("search posting chunk cut short".into()));
    }
    Ok(out)
}

/// A chunk holding `numbers` in this order.
pub fn encode_chunk(numbers: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(numbers.len() * 2);
    let mut last = 0u64;
    for &n in numbers {
        put_varint(&mut out, zigzag(i128::from(n) - i128::from(last)));
        last = n;
    }
    out
}

/// `scope term \0 origin \0`: every chunk of one term from one origin.
fn origin_prefix(scope: Scope<'_>, term: &Term, origin: &str) -> Vec<u8> {
    let mut k = term_prefix(scope, term);
    k.extend_from_slice(origin.as_bytes());
    k.push(0);
    k
}

/// Adds `numbers` to the postings of `term` in `scope` for `origin`, as
/// writes into `batch`. The caller holds the store's writer lock (no other
/// writer of this tree), and one batch names each (scope, term, origin)
/// once.
pub fn append(
    tree: &sled::Tree,
    batch: &mut sled::Batch,
    scope: Scope<'_>,
    term: &Term,
    origin: &str,
    mut numbers: Vec<u64>,
) -> Result<(), StoreError> {
    numbers.sort_unstable();
    numbers.dedup();
    let Some(&first_new) = numbers.first() else {
        return Ok(());
    };
    let prefix = origin_prefix(scope, term, origin);
    if let Some(last) = tree.scan_prefix(&prefix).next_back() {
        let (key, value) = last?;
        let old = decode_chunk(&value)?;
        let in_order = old.last().is_none_or(|&n| n < first_new);
        if !in_order {
            // A replay in another order: merge every chunk of the term,
            // so no two chunks start with the same number.
            for entry in tree.scan_prefix(&prefix) {
                let (key, value) = entry?;
                numbers.extend(decode_chunk(&value)?);
                batch.remove(key);
            }
            numbers.sort_unstable();
            numbers.dedup();
        } else if value.len() < CHUNK_BYTES {
            // Still room: the last chunk takes the new numbers first.
            let mut merged = old;
            merged.extend(numbers);
            numbers = merged;
            batch.remove(key);
        }
    }
    write_chunks(batch, scope, term, origin, &numbers);
    Ok(())
}

/// Numbers found under one prefix, per origin.
#[derive(Debug, Default)]
pub struct Postings {
    pub by_origin: HashMap<String, Vec<u64>>,
}

impl Postings {
    /// Sorts and dedups each origin's numbers.
    fn settle(mut self) -> Postings {
        for numbers in self.by_origin.values_mut() {
            numbers.sort_unstable();
            numbers.dedup();
        }
        self
    }

    pub fn len(&self) -> usize {
        self.by_origin.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_origin.values().all(Vec::is_empty)
    }

    /// Keeps only the numbers also in `other`.
    pub fn intersect(mut self, other: &Postings) -> Postings {
        self.by_origin.retain(|origin, numbers| {
            let Some(theirs) = other.by_origin.get(origin) else {
                return false;
            };
            numbers.retain(|n| theirs.binary_search(n).is_ok());
            !numbers.is_empty()
        });
        self
    }
}

/// Every posting under `prefix` (one term, or every term starting with
/// one character), sorted per origin.
pub fn read(postings: &sled::Tree, prefix: &[u8]) -> Result<Postings, StoreError> {
    let mut out = Postings::default();
    for entry in postings.scan_prefix(prefix) {
        let (key, value) = entry?;
        let origin = origin_of(&key)?;
        let numbers = decode_chunk(&value)?;
        out.by_origin
            .entry(origin.to_string())
            .or_default()
            .extend(numbers);
    }
    Ok(out.settle())
}

/// The origin in a chunk key: between the 0 byte that ends the term
/// (terms and origins never hold one) and the 0 before the 8-byte tag.
fn origin_of(key: &[u8]) -> Result<&str, StoreError> {
    let bad = || StoreError::Corrupt("search posting key".into());
    let sep = key.len().checked_sub(9).ok_or_else(bad)?;
    if key[sep] != 0 {
        return Err(bad());
    }
    let start = key[..sep].iter().rposition(|&b| b == 0).ok_or_else(bad)? + 1;
    std::str::from_utf8(&key[start..sep]).map_err(|_| bad())
}

/// Writes sorted `numbers` as chunks of about `CHUNK_BYTES`, each keyed
/// by its first number.
fn write_chunks(
    batch: &mut sled::Batch,
    scope: Scope<'_>,
    term: &Term,
    origin: &str,
    numbers: &[u64],
) {
    let mut start = 0;
    while start < numbers.len() {
        let mut end = start;
        let mut bytes = Vec::new();
        let mut last = 0u64;
        while end < numbers.len() && bytes.len() < CHUNK_BYTES {
            put_varint(
                &mut bytes,
                zigzag(i128::from(numbers[end]) - i128::from(last)),
            );
            last = numbers[end];
            end += 1;
        }
        batch.insert(
            chunk_key(scope, term, origin, numbers[start].to_be_bytes()),
            bytes,
        );
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_in_any_order() -> Result<(), StoreError> {
        for numbers in [
            vec![],
            vec![1, 2, 3, 1_000_000],
            vec![9, 3, u64::MAX / 4, 0],
        ] {
            assert_eq!(decode_chunk(&encode_chunk(&numbers))?, numbers);
        }
        assert!(decode_chunk(&[0x80]).is_err());
        assert!(decode_chunk(&[0xFF; 12]).is_err());
        Ok(())
    }

    #[test]
    fn keys_name_their_origin() -> Result<(), StoreError> {
        let term = Term::pair('학', '기');
        let key = chunk_key(
            Scope::Mailbox("kim@x"),
            &term,
            "node-a",
            [0, 0, 0, 0, 0, 0, 1, 0],
        );
        assert!(key.starts_with(&start_prefix(Scope::Mailbox("kim@x"), '학')));
        assert!(key.starts_with(&term_prefix(Scope::Mailbox("kim@x"), &term)));
        assert_eq!(origin_of(&key)?, "node-a");
        assert!(origin_of(&key[..key.len() - 1]).is_err());
        assert!(origin_of(b"x").is_err());
        Ok(())
    }

    fn append_batch(tree: &sled::Tree, term: &Term, numbers: Vec<u64>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        append(tree, &mut batch, Scope::Shared, term, "node-a", numbers)?;
        tree.apply_batch(batch)?;
        Ok(())
    }

    #[test]
    fn batches_fill_the_last_chunk_then_start_new_ones() -> Result<(), StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("p")?;
        let term = Term::pair('a', 'b');
        // One number per batch (a quiet server), then bigger batches.
        for n in 1..=500u64 {
            append_batch(&tree, &term, vec![n * 3])?;
        }
        for start in (501..=2_000u64).step_by(100) {
            append_batch(&tree, &term, (start..start + 100).map(|n| n * 3).collect())?;
        }
        let read = read(&tree, &term_prefix(Scope::Shared, &term))?;
        let expected: Vec<u64> = (1..=2_000u64).map(|n| n * 3).collect();
        assert_eq!(read.by_origin.get("node-a"), Some(&expected));
        // Chunks stay small and few: none past CHUNK_BYTES by more than
        // one number, about one per CHUNK_BYTES of postings.
        assert!(tree.len() > 2 && tree.len() < 100, "chunks: {}", tree.len());
        for entry in tree.iter() {
            assert!(entry?.1.len() < CHUNK_BYTES + 10);
        }
        Ok(())
    }

    #[test]
    fn a_replay_in_another_order_keeps_every_number_once() -> Result<(), StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("p")?;
        let term = Term::pair('학', '기');
        append_batch(&tree, &term, (100..400).collect())?;
        append_batch(&tree, &term, (1..150).rev().collect())?;
        append_batch(&tree, &term, vec![7, 399, 1_000])?;
        let read = read(&tree, &term_prefix(Scope::Shared, &term))?;
        let mut expected: Vec<u64> = (1..400).collect();
        expected.push(1_000);
        assert_eq!(read.by_origin.get("node-a"), Some(&expected));
        Ok(())
    }
}
