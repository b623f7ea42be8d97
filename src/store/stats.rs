//! `campusmail store stats` (and, later, the console's storage page): per
//! data directory bytes, garbage, blobs, free space and operations.
//!
//! Operation counts are kept in memory since the store opened (they say
//! how evenly reads and writes spread, not a lifetime total). Counting
//! blobs per directory walks the index, so this is for people, not for
//! the delivery path.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::blob::BlobLocation;
use super::{Store, StoreError};

#[derive(Clone, Debug, Default, Serialize)]
pub struct DiskStats {
    pub disk: u16,
    pub path: PathBuf,
    pub weight: u32,
    pub draining: bool,
    pub segments: usize,
    /// Bytes in segment files (committed).
    pub bytes: u64,
    /// Of those, bytes no message uses (reclaimed by compaction).
    pub garbage: u64,
    pub blobs: u64,
    /// Free and total space of the file system holding the directory.
    pub free: Option<u64>,
    pub total: Option<u64>,
    pub reads: u64,
    pub writes: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StoreStats {
    pub disks: Vec<DiskStats>,
    pub messages: u64,
    pub blobs: u64,
    /// Deliveries the search indexer has not posted yet (found by search
    /// anyway; a number that keeps growing means the indexer is stuck).
    pub search_backlog: u64,
}

impl Store {
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let segs = self.blobs.all_segments()?;
        let disk_of: HashMap<u32, u16> = segs.iter().map(|(n, s)| (*n, s.disk)).collect();
        let mut blobs_on: HashMap<u16, u64> = HashMap::new();
        let mut blobs = 0;
        for entry in self.blobs.index_tree().iter() {
            let (_, v) = entry?;
            let loc = BlobLocation::decode(&v)?;
            blobs += 1;
            if let Some(d) = disk_of.get(&loc.segment) {
                *blobs_on.entry(*d).or_default() += 1;
            }
        }
        let disks = self
            .blobs
            .disks()
            .iter()
            .map(|d| {
                let mine = segs.iter().filter(|(_, s)| s.disk == d.disk.id);
                let c = &d.counters;
                DiskStats {
                    disk: d.disk.id,
                    path: d.disk.path.clone(),
                    weight: d.disk.weight,
                    draining: d.is_draining(),
                    segments: mine.clone().count(),
                    bytes: mine.clone().map(|(_, s)| s.len).sum(),
                    garbage: mine.map(|(_, s)| s.garbage).sum(),
                    blobs: blobs_on.get(&d.disk.id).copied().unwrap_or(0),
                    free: fs2::available_space(&d.disk.path).ok(),
                    total: fs2::total_space(&d.disk.path).ok(),
                    reads: c.reads.load(Ordering::Relaxed),
                    writes: c.writes.load(Ordering::Relaxed),
                    bytes_read: c.bytes_read.load(Ordering::Relaxed),
                    bytes_written: c.bytes_written.load(Ordering::Relaxed),
                }
            })
            .collect();
        Ok(StoreStats {
            disks,
            messages: self.trees.messages.len() as u64,
            blobs,
            search_backlog: self.search_backlog() as u64,
        })
    }
}

/// 1536 -> "1.5 KiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for StoreStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} message(s) using {} stored blob(s); {} delivery(ies) waiting for the search indexer",
            self.messages, self.blobs, self.search_backlog
        )?;
        for d in &self.disks {
            let opt = |v: Option<u64>| v.map_or("unknown".to_string(), human_bytes);
            writeln!(
                f,
                "disk {} {}{}\n  weight {}, {} segment(s), {} stored ({} garbage), {} blob(s)\n  \
                 free {} of {}\n  since start: {} read(s) ({}), {} write(s) ({})",
                d.disk,
                d.path.display(),
                if d.draining { " [draining]" } else { "" },
                d.weight,
                d.segments,
                human_bytes(d.bytes),
                human_bytes(d.garbage),
                d.blobs,
                opt(d.free),
                opt(d.total),
                d.reads,
                human_bytes(d.bytes_read),
                d.writes,
                human_bytes(d.bytes_written),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
