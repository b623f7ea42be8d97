//! Blob store: message bytes, content-addressed by BLAKE3, appended to
//! segment files (single-instance: the same bytes are stored once and
//! refcounted by the ops that deliver them).
//!
//! On disk: `<store>/blobs/segment-NNNNNN.seg`, each a run of records
//! `magic "CMB1" | length u64 BE | blake3 hash (32) | bytes`. In sled: tree
//! `blobs` (hash -> segment, offset, length, refcount) and tree `segments`
//! (segment number BE -> committed length, i.e. the end of its last indexed
//! record). Only the highest-numbered segment is appended to; the others are
//! sealed and never change (until compaction, a later issue).
//!
//! **Invariant:** a `blobs` entry is written only after its bytes are
//! fsynced, so every indexed record is complete on disk. Bytes past a
//! segment's committed length belong to no index entry (a write torn by a
//! crash, or one whose index entry never reached sled); `open` truncates
//! them away before appending again.
//!
//! Seams for the next issues: reads are plain file reads (`read_record`);
//! mmap of sealed segments goes in its own module with the `unsafe`.
//! Placement over several data directories replaces `segment_path` and the
//! single `dir`; callers only see `put`/`get`/`location`.
//!
//! Untrusted input: message bytes are stored opaquely; segment contents are
//! checked against the index (magic, length, hash) on every read.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sled::Transactional;

use super::StoreError;

const MAGIC: &[u8; 4] = b"CMB1";
const HEADER_LEN: u64 = 4 + 8 + 32;
/// A segment is sealed once appending would take it past this size.
pub const DEFAULT_SEGMENT_LIMIT: u64 = 64 * 1024 * 1024;

/// BLAKE3 hash of a blob's bytes; its identity. Serialized as hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(*blake3::hash(bytes).as_bytes())
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
        let field = |r: std::ops::Range<usize>| {
            b.get(r)
                .ok_or_else(|| StoreError::Corrupt("short blob index entry".into()))
        };
        let u64_at = |r| -> Result<u64, StoreError> {
            let s: &[u8] = field(r)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            Ok(u64::from_be_bytes(a))
        };
        let seg = field(0..4)?;
        Ok(BlobLocation {
            segment: u32::from_be_bytes([seg[0], seg[1], seg[2], seg[3]]),
            offset: u64_at(4..12)?,
            len: u64_at(12..20)?,
            refcount: u64_at(20..28)?,
        })
    }
}

/// The segment currently appended to.
struct ActiveSegment {
    number: u32,
    file: File,
    len: u64,
}

pub struct BlobStore {
    dir: PathBuf,
    index: sled::Tree,
    segments: sled::Tree,
    /// Serializes appends: one writer per segment, and "is it stored
    /// already?" is answered under the same lock as the append.
    active: Mutex<ActiveSegment>,
    segment_limit: u64,
}

fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("segment-{number:06}.seg"))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    // Makes a newly created segment file's directory entry durable.
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn committed_len(segments: &sled::Tree, number: u32) -> Result<u64, StoreError> {
    match segments.get(number.to_be_bytes())? {
        Some(v) if v.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&v);
            Ok(u64::from_be_bytes(a))
        }
        Some(_) => Err(StoreError::Corrupt(format!(
            "segment {number} length entry"
        ))),
        None => Ok(0),
    }
}

/// Opens (creating if needed) segment `number` for appending at `len`,
/// cutting off anything past `len`. `None` if the file is shorter than its
/// committed length (bytes lost under us): the caller starts a new segment.
fn open_for_append(dir: &Path, number: u32, len: u64) -> Result<Option<File>, StoreError> {
    let path = segment_path(dir, number);
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    if !existed {
        sync_dir(dir)?;
    }
    let on_disk = file.metadata()?.len();
    if on_disk < len {
        tracing::error!(
            segment = number,
            on_disk,
            committed = len,
            "segment shorter than its index; starting a new one"
        );
        return Ok(None);
    }
    if on_disk > len {
        tracing::warn!(
            segment = number,
            dropped = on_disk - len,
            "dropping unindexed bytes at segment end (torn write)"
        );
        file.set_len(len)?;
        file.sync_all()?;
    }
    Ok(Some(file))
}

impl BlobStore {
    /// Opens the blob store in `dir` (created if missing) with its index in `db`.
    pub fn open(dir: &Path, db: &sled::Db) -> Result<BlobStore, StoreError> {
        std::fs::create_dir_all(dir)?;
        let index = db.open_tree("blobs")?;
        let segments = db.open_tree("segments")?;
        let mut number = match segments.last()? {
            Some((k, _)) if k.len() == 4 => u32::from_be_bytes([k[0], k[1], k[2], k[3]]),
            Some(_) => return Err(StoreError::Corrupt("segment number key".into())),
            None => 1,
        };
        let mut len = committed_len(&segments, number)?;
        let file = loop {
            segments.insert(number.to_be_bytes(), &len.to_be_bytes())?;
            if let Some(f) = open_for_append(dir, number, len)? {
                break f;
            }
            number = number
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt("segment numbers exhausted".into()))?;
            len = 0;
        };
        Ok(BlobStore {
            dir: dir.to_path_buf(),
            index,
            segments,
            active: Mutex::new(ActiveSegment { number, file, len }),
            segment_limit: DEFAULT_SEGMENT_LIMIT,
        })
    }

    #[cfg(test)]
    pub fn set_segment_limit(&mut self, limit: u64) {
        self.segment_limit = limit;
    }

    /// The sled tree holding the blob index (ops bump refcounts in it).
    pub fn index_tree(&self) -> &sled::Tree {
        &self.index
    }

    /// Stores `bytes` unless a blob with the same hash is already indexed.
    /// New blobs are indexed with refcount 0; the op that delivers them
    /// raises it. The index entry is not flushed here: the caller's sled
    /// flush after writing the op makes both durable together.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobId, StoreError> {
        let id = BlobId::of(bytes);
        let mut active = self.active.lock().map_err(|_| StoreError::Poisoned)?;
        if self.index.contains_key(id.0)? {
            return Ok(id);
        }
        let record_len = HEADER_LEN + bytes.len() as u64;
        if active.len > 0 && active.len.saturating_add(record_len) > self.segment_limit {
            self.rotate(&mut active)?;
        }
        let mut record = Vec::with_capacity(HEADER_LEN as usize + bytes.len());
        record.extend_from_slice(MAGIC);
        record.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        record.extend_from_slice(&id.0);
        record.extend_from_slice(bytes);
        let offset = active.len;
        active.file.seek(SeekFrom::Start(offset))?;
        if let Err(e) = active
            .file
            .write_all(&record)
            .and_then(|()| active.file.sync_data())
        {
            // Leave the committed length where it was; the partial record
            // is cut off by the next open (or overwritten by the next put).
            return Err(e.into());
        }
        // The fsync above made the bytes durable; only now may the index
        // point at them.
        let loc = BlobLocation {
            segment: active.number,
            offset,
            len: bytes.len() as u64,
            refcount: 0,
        };
        let end = offset + record_len;
        (&self.index, &self.segments)
            .transaction(|(index, segments)| {
                index.insert(&id.0, &loc.encode())?;
                segments.insert(&active.number.to_be_bytes(), &end.to_be_bytes())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
            })
            .map_err(StoreError::from_tx)?;
        active.len = end;
        Ok(id)
    }

    fn rotate(&self, active: &mut ActiveSegment) -> Result<(), StoreError> {
        let number = active
            .number
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt("segment numbers exhausted".into()))?;
        self.segments
            .insert(number.to_be_bytes(), &0u64.to_be_bytes())?;
        let file = open_for_append(&self.dir, number, 0)?
            .ok_or_else(|| StoreError::Corrupt(format!("cannot start segment {number}")))?;
        *active = ActiveSegment {
            number,
            file,
            len: 0,
        };
        Ok(())
    }

    /// Where blob `id` lives, if indexed.
    pub fn location(&self, id: &BlobId) -> Result<Option<BlobLocation>, StoreError> {
        self.index
            .get(id.0)?
            .map(|v| BlobLocation::decode(&v))
            .transpose()
    }

    /// The bytes of blob `id`, verified against its hash.
    pub fn get(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        match self.location(id)? {
            Some(loc) => self.read_record(id, &loc).map(Some),
            None => Ok(None),
        }
    }

    fn read_record(&self, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "segment {} offset {}: {what}",
                loc.segment, loc.offset
            ))
        };
        let mut file = File::open(segment_path(&self.dir, loc.segment))?;
        file.seek(SeekFrom::Start(loc.offset))?;
        let mut header = [0u8; HEADER_LEN as usize];
        file.read_exact(&mut header)?;
        if &header[..4] != MAGIC {
            return Err(corrupt("bad record magic"));
        }
        if header[4..12] != loc.len.to_be_bytes() || header[12..] != id.0 {
            return Err(corrupt("record header does not match index"));
        }
        let len = usize::try_from(loc.len).map_err(|_| corrupt("record too large"))?;
        let mut bytes = vec![0u8; len];
        file.read_exact(&mut bytes)?;
        if BlobId::of(&bytes) != *id {
            return Err(corrupt("hash mismatch"));
        }
        Ok(bytes)
    }

    /// Path of segment `number` (tests; the future fsck).
    #[cfg(test)]
    pub fn segment_file(&self, number: u32) -> PathBuf {
        segment_path(&self.dir, number)
    }

    /// Committed length of segment `number` (tests; the future fsck).
    #[cfg(test)]
    pub fn segment_len(&self, number: u32) -> Result<u64, StoreError> {
        committed_len(&self.segments, number)
    }
}
