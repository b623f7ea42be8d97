//! Segment files and their bookkeeping.
//!
//! Sled tree `segments`: segment number (u32 BE, unique across all data
//! directories) -> JSON [`SegmentInfo`]: which disk holds it, its committed
//! length (end of its last indexed record), how many of those bytes are
//! garbage (records no message refers to any more) and whether it is sealed.
//!
//! Invariants:
//! - a segment's entry exists (and is flushed) before its file is created,
//!   so a segment file without an entry is a leftover of a finished
//!   compaction and may be deleted;
//! - each disk has at most one unsealed (active) segment; sealed segments
//!   never change until compaction deletes them whole;
//! - `len` only grows, in the same sled transaction that indexes the
//!   records below it; bytes past `len` belong to nobody.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub disk: u16,
    pub len: u64,
    pub garbage: u64,
    pub sealed: bool,
}

impl SegmentInfo {
    pub fn decode(v: &[u8]) -> Result<SegmentInfo, StoreError> {
        serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("segment record: {e}")))
    }

    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(format!("segment record: {e}")))
    }
}

pub fn key(number: u32) -> [u8; 4] {
    number.to_be_bytes()
}

pub fn number_of(key: &[u8]) -> Result<u32, StoreError> {
    <[u8; 4]>::try_from(key)
        .map(u32::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("segment number key".into()))
}

/// Every segment, by number.
pub fn load_all(tree: &sled::Tree) -> Result<Vec<(u32, SegmentInfo)>, StoreError> {
    let mut out = Vec::new();
    for entry in tree.iter() {
        let (k, v) = entry?;
        out.push((number_of(&k)?, SegmentInfo::decode(&v)?));
    }
    Ok(out)
}

pub fn file_name(number: u32) -> String {
    format!("segment-{number:08}.seg")
}

pub fn path(blobs_dir: &Path, number: u32) -> PathBuf {
    blobs_dir.join(file_name(number))
}

/// The segment number in a file name made by `file_name`.
pub fn parse_file_name(name: &str) -> Option<u32> {
    name.strip_prefix("segment-")?
        .strip_suffix(".seg")?
        .parse()
        .ok()
}

pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    // Makes a created or removed directory entry durable.
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Opens segment `number` for appending at `len`, creating it if needed
/// and cutting off anything past `len` (a torn write, or records whose
/// index entries never committed). `None` if the file is shorter than its
/// committed length (bytes lost under us): the caller starts a new segment.
pub fn open_for_append(
    blobs_dir: &Path,
    number: u32,
    len: u64,
) -> Result<Option<File>, StoreError> {
    let path = path(blobs_dir, number);
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    if !existed {
        sync_dir(blobs_dir)?;
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

/// Makes a sealed segment's file read-only: nothing may write it again.
pub fn make_read_only(blobs_dir: &Path, number: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let p = path(blobs_dir, number);
    if p.exists() {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("segment-x.seg"), None);
        assert_eq!(parse_file_name("other"), None);
    }
}
