//! Read-only memory maps of sealed segments: the one place in the store
//! with `unsafe`.
//!
//! Why mapping is sound here (the design makes the dangerous cases
//! impossible rather than catching them):
//! - A segment is mapped only once it is **sealed**: nothing appends to it,
//!   truncates it or rewrites it again. Appends go to a different, active
//!   segment; `open`'s cut-off of torn bytes touches only the active one.
//! - Compaction never edits a sealed segment in place: it copies live
//!   records elsewhere, forgets the segment, and unlinks the file. On Linux
//!   an unlinked file's pages stay valid for every existing map, so a reader
//!   holding an `Arc<MappedSegment>` keeps reading correct bytes.
//! - The files live in owner-only folders and are made read-only (0400)
//!   when sealed; only campusmail itself writes there. A person truncating a
//!   sealed segment by hand would make reads fault (SIGBUS): the admin guide
//!   says never to edit the data folders, and `store fsck` is the tool for
//!   checking them.
//! - Before mapping, the file's length is checked to cover the segment's
//!   committed length, so every indexed record lies inside the map.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::store::StoreError;

/// A segment's bytes: a map of a sealed segment, or a copy of the
/// committed part of an active one (fsck reads those).
pub struct MappedSegment {
    backing: Backing,
}

enum Backing {
    Map(Mmap),
    Copy(Vec<u8>),
    Empty,
}

impl MappedSegment {
    /// Maps the sealed segment at `path`, whose committed length is `len`.
    pub fn open(path: &Path, len: u64) -> Result<MappedSegment, StoreError> {
        let file = File::open(path)?;
        let on_disk = file.metadata()?.len();
        if on_disk < len {
            return Err(StoreError::Corrupt(format!(
                "sealed segment {} is {on_disk} bytes, shorter than its {len} indexed bytes",
                path.display()
            )));
        }
        if len == 0 {
            // Mapping an empty file fails on Linux; there is nothing to read.
            return Ok(MappedSegment {
                backing: Backing::Empty,
            });
        }
        // SAFETY: the file is a sealed segment (see the module comment):
        // no process writes to or truncates it while it exists, and its
        // length was just checked to cover every indexed record. The map is
        // read-only and lives as long as this value.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file)? };
        Ok(MappedSegment {
            backing: Backing::Map(map),
        })
    }

    /// Reads the first `len` bytes of a segment that is still appended to
    /// (it must not be mapped: its length changes).
    pub fn read_prefix(path: &Path, len: u64) -> Result<MappedSegment, StoreError> {
        use std::io::Read;
        let file = File::open(path)?;
        let mut bytes = Vec::new();
        file.take(len).read_to_end(&mut bytes)?;
        if (bytes.len() as u64) < len {
            return Err(StoreError::Corrupt(format!(
                "segment {} is shorter than its {len} indexed bytes",
                path.display()
            )));
        }
        Ok(MappedSegment {
            backing: Backing::Copy(bytes),
        })
    }

    /// The record bytes at `offset..offset + len`, if inside the map.
    pub fn slice(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let map = self.bytes();
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        map.get(start..end)
    }

    /// Every byte of the segment (fsck and compaction walk it).
    pub fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Map(m) => m,
            Backing::Copy(v) => v,
            Backing::Empty => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_file_and_refuses_a_short_one() -> Result<(), StoreError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.seg");
        std::fs::write(&path, b"0123456789")?;
        let m = MappedSegment::open(&path, 10)?;
        assert_eq!(m.slice(2, 3), Some(&b"234"[..]));
        assert_eq!(m.slice(8, 3), None);
        assert!(MappedSegment::open(&path, 11).is_err());
        // Unlinking keeps the map readable.
        std::fs::remove_file(&path)?;
        assert_eq!(m.bytes(), b"0123456789");
        Ok(())
    }
}
