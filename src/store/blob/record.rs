//! The on-disk and in-index shape of one blob.
//!
//! A segment file is a run of records `magic "CMB1" | length u64 BE |
//! blake3 hash (32) | bytes`. The index (sled tree `blobs`) maps a hash to
//! its [`BlobLocation`]. Everything read back from a segment is checked
//! against the index entry (magic, length, hash) before it is returned.

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

pub const MAGIC: &[u8; 4] = b"CMB1";
pub const HEADER_LEN: u64 = 4 + 8 + 32;

/// BLAKE3 hash of a blob's bytes; its identity. Serialized as hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(*blake3::hash(bytes).as_bytes())
    }

    pub fn from_key(key: &[u8]) -> Result<BlobId, StoreError> {
        <[u8; 32]>::try_from(key)
            .map(BlobId)
            .map_err(|_| StoreError::Corrupt("blob index key is not a hash".into()))
    }
}

impl TryFrom<String> for BlobId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        blake3::Hash::from_hex(s.as_bytes())
            .map(|h| BlobId(*h.as_bytes()))
            .map_err(|e| format!("bad blob id: {e}"))
    }
}

impl From<BlobId> for String {
    fn from(id: BlobId) -> String {
        blake3::Hash::from_bytes(id.0).to_hex().to_string()
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(*self))
    }
}

/// Where a blob lives and how many messages refer to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub segment: u32,
    pub offset: u64,
    pub len: u64,
    pub refcount: u64,
}

impl BlobLocation {
    pub fn encode(&self) -> [u8; 28] {
        let mut b = [0u8; 28];
        b[..4].copy_from_slice(&self.segment.to_be_bytes());
        b[4..12].copy_from_slice(&self.offset.to_be_bytes());
        b[12..20].copy_from_slice(&self.len.to_be_bytes());
        b[20..].copy_from_slice(&self.refcount.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<BlobLocation, StoreError> {
        if b.len() != 28 {
            return Err(StoreError::Corrupt(
                "blob index entry has the wrong size".into(),
            ));
        }
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            u64::from_be_bytes(a)
        };
        Ok(BlobLocation {
            segment: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            offset: u64_at(4),
            len: u64_at(12),
            refcount: u64_at(20),
        })
    }

    /// Bytes the record takes in its segment (header included).
    pub fn record_len(&self) -> u64 {
        HEADER_LEN.saturating_add(self.len)
    }

    /// True when both name the same record (refcounts aside).
    pub fn same_place(&self, other: &BlobLocation) -> bool {
        self.segment == other.segment && self.offset == other.offset
    }
}

/// A whole record, ready to append.
pub fn encode_record(id: &BlobId, bytes: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER_LEN as usize + bytes.len());
    record.extend_from_slice(MAGIC);
    record.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    record.extend_from_slice(&id.0);
    record.extend_from_slice(bytes);
    record
}

/// Parses a record header: (length of the bytes, hash). None if the magic
/// is wrong or the header is short.
pub fn parse_header(header: &[u8]) -> Option<(u64, BlobId)> {
    if header.len() < HEADER_LEN as usize || &header[..4] != MAGIC {
        return None;
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[4..12]);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&header[12..44]);
    Some((u64::from_be_bytes(len), BlobId(hash)))
}

/// Checks a record read from a segment at `loc` against the index and
/// returns its bytes.
pub fn verify<'a>(
    record: &'a [u8],
    id: &BlobId,
    loc: &BlobLocation,
) -> Result<&'a [u8], StoreError> {
    let corrupt = |what: &str| {
        StoreError::Corrupt(format!(
            "segment {} offset {}: {what}",
            loc.segment, loc.offset
        ))
    };
    let Some((len, hash)) = parse_header(record) else {
        return Err(corrupt("bad record header"));
    };
    if len != loc.len || hash != *id {
        return Err(corrupt("record header does not match the index"));
    }
    let bytes = record
        .get(HEADER_LEN as usize..)
        .ok_or_else(|| corrupt("record cut short"))?;
    if bytes.len() as u64 != loc.len {
        return Err(corrupt("record cut short"));
    }
    if BlobId::of(bytes) != *id {
        return Err(corrupt("hash mismatch"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_named() {
        let id = BlobId::of(b"hello");
        let rec = encode_record(&id, b"hello");
        let loc = BlobLocation {
            segment: 1,
            offset: 0,
            len: 5,
            refcount: 1,
        };
        assert_eq!(verify(&rec, &id, &loc).ok(), Some(&b"hello"[..]));
        assert_eq!(BlobLocation::decode(&loc.encode()).ok(), Some(loc));
        let mut bad = rec.clone();
        bad[HEADER_LEN as usize] ^= 1;
        assert!(
            matches!(verify(&bad, &id, &loc), Err(StoreError::Corrupt(m)) if m.contains("hash"))
        );
        assert!(verify(&rec[..20], &id, &loc).is_err());
        assert!(BlobLocation::decode(&[0; 5]).is_err());
    }
}
