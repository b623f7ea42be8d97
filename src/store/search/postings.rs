//! Posting lists: which messages hold a term, chunked and delta-encoded.
//!
//! Tree `search_postings`: `scope term \0 origin \0 tag(8 bytes)` -> chunk.
//! - scope: `m mailbox \0` for the messages of one mailbox (the number is
//!   the message id's sequence number), or `s \0` for deliveries shared by
//!   more than `SHARED_ABOVE` mailboxes (the number is the delivery op's
//!   sequence number; who got it is in `search_shared`, see `index.rs`);
//! - tag: `0xFF * 8` for the open chunk, which new numbers are appended to
//!   inside the op's transaction (sled transactions cannot scan, so the
//!   open chunk must have a key known in advance), or the first number of
//!   a sealed chunk (big endian, so sealed chunks sort by number);
//! - chunk: numbers as zig-zag varint deltas, the first from 0. Numbers
//!   of one origin arrive in increasing order (its ops are applied in
//!   order), so deltas are small and positive; zig-zag keeps a replay or a
//!   rebuild in another order correct, only less compact.
//!
//! An open chunk is sealed when it passes [`CHUNK_BYTES`]: one key per
//! few dozen postings instead of one per posting, and an append rewrites
//! at most that many bytes. Small on purpose: sled writes every rewritten
//! value to its log again, so the open chunk's size is paid on every
//! delivery (measured by `search::bench`: 64 bytes kept the metadata
//! folder at 3,145 bytes per message where 512 took 4,980, for 8% more
//! bytes of keys and values; bench/README.md). Nothing is removed when a message is deleted: the
//! query checks every candidate against the live message, and fsck's
//! repair (a rebuild) drops the dead numbers.
//!
//! Untrusted input: none (keys and chunks are written only here); a damaged
//! chunk reads as `Corrupt`.

use std::collections::HashMap;

use sled::transaction::TransactionalTree;

use super::text::Term;
use crate::store::state::TxResult;
use crate::store::StoreError;

/// An open chunk is sealed once it holds this many bytes.
pub const CHUNK_BYTES: usize = 64;
const OPEN_TAG: [u8; 8] = [0xFF; 8];

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

fn chunk_key(scope: Scope<'_>, term: &Term, origin: &str, tag: [u8; 8]) -> Vec<u8> {
    let mut k = term_prefix(scope, term);
    k.extend_from_slice(origin.as_bytes());
    k.push(0);
    k.extend_from_slice(&tag);
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

/// Appends `number` to the postings of `term` in `scope` for `origin`,
/// inside the op's transaction; seals the open chunk when it is full.
pub fn tx_append(
    postings: &TransactionalTree,
    scope: Scope<'_>,
    term: &Term,
    origin: &str,
    number: u64,
) -> TxResult<()> {
    let open = chunk_key(scope, term, origin, OPEN_TAG);
    let (mut bytes, last, first) = match postings.get(&open)? {
        Some(v) => {
            let numbers = decode_chunk(&v).or_else(crate::store::state::abort)?;
            (
                v.to_vec(),
                numbers.last().copied(),
                numbers.first().copied(),
            )
        }
        None => (Vec::new(), None, None),
    };
    let base = last.unwrap_or(0);
    put_varint(&mut bytes, zigzag(i128::from(number) - i128::from(base)));
    if bytes.len() < CHUNK_BYTES {
        postings.insert(open, bytes)?;
        return Ok(());
    }
    let first = first.unwrap_or(number);
    let sealed = chunk_key(scope, term, origin, first.to_be_bytes());
    let bytes = match postings.get(&sealed)? {
        // Only after a replay in another order: keep both.
        Some(old) => {
            let mut numbers = decode_chunk(&old).or_else(crate::store::state::abort)?;
            numbers.extend(decode_chunk(&bytes).or_else(crate::store::state::abort)?);
            encode_chunk(&numbers)
        }
        None => bytes,
    };
    postings.insert(sealed, bytes)?;
    postings.remove(open)?;
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

/// Removes every posting (a rebuild starts from nothing).
pub fn clear(postings: &sled::Tree) -> Result<(), StoreError> {
    postings.clear()?;
    Ok(())
}

/// Writes numbers gathered outside a transaction (a rebuild) as sealed
/// chunks of at most `CHUNK_BYTES`.
pub fn write_sealed(
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

    #[test]
    fn appends_seal_full_chunks() -> Result<(), StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("p")?;
        let term = Term::pair('a', 'b');
        for n in 1..=2_000u64 {
            tree.transaction(|tx| tx_append(tx, Scope::Shared, &term, "node-a", n * 3))
                .map_err(crate::store::StoreError::from_tx)?;
        }
        let read = read(&tree, &term_prefix(Scope::Shared, &term))?;
        let expected: Vec<u64> = (1..=2_000u64).map(|n| n * 3).collect();
        assert_eq!(read.by_origin.get("node-a"), Some(&expected));
        assert!(tree.len() > 2, "sealed chunks: {}", tree.len());
        Ok(())
    }
}
