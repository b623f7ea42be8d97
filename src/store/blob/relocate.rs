//! Moving records: compaction (reclaiming garbage), rebalance (moving
//! blobs to the directory placement picks) and drain (emptying one).
//!
//! All three use one step, `relocate_batch`: copy live records to the
//! active segment of the disk they belong on (fsync), then in one sled
//! transaction point each index entry at its copy *only if it still points
//! at the old record* (a blob deleted or moved meanwhile keeps its state;
//! the copy counts as garbage) and count the old record as garbage.
//!
//! Crash safety, step by step for compacting segment S:
//! 1. copies appended and fsynced; a crash here leaves bytes past the
//!    target's committed length, cut off on the next open: nothing changed;
//! 2. index entries moved in a transaction, then `flush`: **the moves are
//!    durable here**; a crash before the flush is the same as a crash in 1;
//! 3. every record of S re-checked: no index entry may still point into S;
//! 4. S's entry removed and flushed, then the file unlinked: a crash
//!    between the two leaves a file without an entry, which `open` deletes.
//!
//! Reads never wait: readers hold an `Arc` of a sealed segment's map, which
//! stays valid after the unlink, and `BlobStore::get` looks the location up
//! again if a segment vanished under it. Deliveries wait for a relocation
//! only while it appends one batch to the same disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;

use super::mapped::MappedSegment;
use super::record::{self, BlobId, BlobLocation, HEADER_LEN};
use super::segments::{self, SegmentInfo};
use super::{add_garbage, disks, BlobStore, DiskState};
use crate::store::StoreError;

/// Relocations are appended and fsynced this many bytes at a time.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Segments deleted.
    pub segments: usize,
    /// Live records copied elsewhere first.
    pub moved_blobs: usize,
    pub moved_bytes: u64,
    /// Segment bytes given back to the file systems.
    pub freed_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RebalanceReport {
    pub moved_blobs: usize,
    pub moved_bytes: u64,
    pub compaction: CompactReport,
    /// Segments still on the drained directory (0 when it may be removed).
    pub left_on_drained: Option<usize>,
}

/// Records waiting to go to one disk.
#[derive(Default)]
struct Batch {
    items: Vec<(BlobId, BlobLocation, Vec<u8>)>,
    bytes: usize,
}

impl BlobStore {
    /// Compacts every sealed segment whose garbage is at least
    /// `min_garbage_percent` of its length (0 = every sealed segment with
    /// any garbage).
    pub fn compact(&self, min_garbage_percent: u64) -> Result<CompactReport, StoreError> {
        let _one = self.maintenance.lock().map_err(|_| StoreError::Poisoned)?;
        self.compact_locked(|_, info| {
            info.sealed
                && info.garbage > 0
                && info.garbage.saturating_mul(100) >= info.len.saturating_mul(min_garbage_percent)
        })
    }

    fn compact_locked(
        &self,
        wanted: impl Fn(u32, &SegmentInfo) -> bool,
    ) -> Result<CompactReport, StoreError> {
        let mut report = CompactReport::default();
        for (number, info) in self.all_segments()? {
            if !wanted(number, &info) {
                continue;
            }
            match self.compact_segment(number, &info) {
                Ok((moved, bytes)) => {
                    report.segments += 1;
                    report.moved_blobs += moved;
                    report.moved_bytes += bytes;
                    report.freed_bytes += info.len;
                }
                Err(e) => {
                    // A damaged segment is left alone for fsck to report.
                    tracing::error!(segment = number, error = %e, "compaction skipped a segment");
                }
            }
        }
        if report.segments > 0 {
            tracing::info!(?report, "compaction finished");
        }
        Ok(report)
    }

    /// Moves segment `number`'s live records away and deletes it.
    fn compact_segment(&self, number: u32, info: &SegmentInfo) -> Result<(usize, u64), StoreError> {
        let d = self
            .disk(info.disk)
            .ok_or_else(|| StoreError::Corrupt(format!("segment {number} on unknown disk")))?;
        let Some(map) = self.map(d, number, info.len)? else {
            return Err(StoreError::Corrupt(format!(
                "segment {number} file is missing"
            )));
        };
        let live = self.live_records(number, info, &map)?;
        let (mut moved, mut moved_bytes) = (0usize, 0u64);
        let mut batches: HashMap<u16, Batch> = HashMap::new();
        for (id, loc) in live {
            let rec = map
                .slice(loc.offset, loc.record_len())
                .ok_or_else(|| StoreError::Corrupt(format!("segment {number} cut short")))?;
            let bytes = record::verify(rec, &id, &loc)?.to_vec();
            moved += 1;
            moved_bytes += bytes.len() as u64;
            self.queue_move(&mut batches, id, loc, bytes)?;
        }
        self.flush_batches(&mut batches)?;
        self.db.flush()?;
        // Step 3: nothing may point into the segment any more.
        if !self.live_records(number, info, &map)?.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "segment {number} still has live records after compaction"
            )));
        }
        self.forget_segment(d, number)?;
        Ok((moved, moved_bytes))
    }

    /// Records of a segment that the index still points at.
    fn live_records(
        &self,
        number: u32,
        info: &SegmentInfo,
        map: &MappedSegment,
    ) -> Result<Vec<(BlobId, BlobLocation)>, StoreError> {
        let mut live = Vec::new();
        let mut pos = 0u64;
        while pos < info.len {
            let header = map
                .slice(pos, HEADER_LEN)
                .and_then(record::parse_header)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("segment {number}: bad record header at {pos}"))
                })?;
            let (len, id) = header;
            if let Some(loc) = self.location(&id)? {
                if loc.segment == number && loc.offset == pos {
                    live.push((id, loc));
                }
            }
            pos = pos.saturating_add(HEADER_LEN).saturating_add(len);
        }
        Ok(live)
    }

    /// Step 4: entry first (flushed), then the file.
    fn forget_segment(&self, d: &DiskState, number: u32) -> Result<(), StoreError> {
        self.segments.remove(segments::key(number))?;
        self.db.flush()?;
        self.maps
            .write()
            .map_err(|_| StoreError::Poisoned)?
            .remove(&number);
        let dir = d.disk.blobs_dir();
        match std::fs::remove_file(segments::path(&dir, number)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        segments::sync_dir(&dir)
    }

    fn queue_move(
        &self,
        batches: &mut HashMap<u16, Batch>,
        id: BlobId,
        loc: BlobLocation,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        let home = self.home_of(&id)?.disk.id;
        let batch = batches.entry(home).or_default();
        batch.bytes += bytes.len();
        batch.items.push((id, loc, bytes));
        if batch.bytes >= BATCH_BYTES {
            let full = std::mem::take(batch);
            self.relocate_batch(home, full)?;
        }
        Ok(())
    }

    fn flush_batches(&self, batches: &mut HashMap<u16, Batch>) -> Result<(), StoreError> {
        for (home, batch) in batches.drain() {
            if !batch.items.is_empty() {
                self.relocate_batch(home, batch)?;
            }
        }
        Ok(())
    }

    fn relocate_batch(&self, home: u16, batch: Batch) -> Result<(), StoreError> {
        let target = self
            .disk(home)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown disk {home}")))?;
        let records: Vec<(BlobId, &[u8])> = batch
            .items
            .iter()
            .map(|(id, _, b)| (*id, b.as_slice()))
            .collect();
        self.append(target, &records, |index, segs, locs| {
            let mut garbage = 0;
            for ((id, old, _), new) in batch.items.iter().zip(locs) {
                let current = match index.get(id.0)? {
                    Some(v) => Some(BlobLocation::decode(&v).or_else(super::abort)?),
                    None => None,
                };
                match current {
                    Some(cur) if cur.same_place(old) => {
                        let moved = BlobLocation {
                            refcount: cur.refcount,
                            ..*new
                        };
                        index.insert(&id.0, &moved.encode())?;
                        add_garbage(segs, old.segment, old.record_len())?;
                    }
                    // Deleted or moved meanwhile: the copy is garbage.
                    _ => garbage += new.record_len(),
                }
            }
            Ok(garbage)
        })?;
        Ok(())
    }

    /// Moves every blob that is not on the directory placement picks for
    /// it (after adding or draining a directory), then compacts what that
    /// emptied. Runs while mail flows.
    pub fn rebalance(&self) -> Result<RebalanceReport, StoreError> {
        let _one = self.maintenance.lock().map_err(|_| StoreError::Poisoned)?;
        self.rebalance_locked()
    }

    fn rebalance_locked(&self) -> Result<RebalanceReport, StoreError> {
        let disk_of: HashMap<u32, u16> = self
            .all_segments()?
            .into_iter()
            .map(|(n, s)| (n, s.disk))
            .collect();
        let mut report = RebalanceReport::default();
        let mut batches: HashMap<u16, Batch> = HashMap::new();
        for entry in self.index.iter() {
            let (key, value) = entry?;
            let id = BlobId::from_key(&key)?;
            let loc = BlobLocation::decode(&value)?;
            let Some(&on) = disk_of.get(&loc.segment) else {
                continue; // written after the table was read: placed right
            };
            if self.home_of(&id)?.disk.id == on {
                continue;
            }
            let Some(bytes) = self.get(&id)? else {
                continue;
            };
            report.moved_blobs += 1;
            report.moved_bytes += bytes.len() as u64;
            self.queue_move(&mut batches, id, loc, bytes)?;
        }
        self.flush_batches(&mut batches)?;
        self.db.flush()?;
        report.compaction = self.compact_locked(|_, info| {
            let draining = self.disk(info.disk).is_some_and(|d| d.is_draining());
            info.sealed && info.garbage > 0 && (draining || info.garbage * 2 >= info.len)
        })?;
        Ok(report)
    }

    /// Stops placing blobs on the directory at `path`, moves everything off
    /// it and deletes its segments. When `left_on_drained` is 0 it can be
    /// removed from appliance.toml.
    pub fn drain(&self, path: &Path) -> Result<RebalanceReport, StoreError> {
        let _one = self.maintenance.lock().map_err(|_| StoreError::Poisoned)?;
        let want = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let d = self
            .disks
            .iter()
            .find(|d| {
                std::fs::canonicalize(&d.disk.path).unwrap_or_else(|_| d.disk.path.clone()) == want
            })
            .ok_or_else(|| {
                StoreError::InvalidName(format!(
                    "{} is not one of the store's data directories",
                    path.display()
                ))
            })?;
        if !self
            .disks
            .iter()
            .any(|o| o.disk.id != d.disk.id && !o.is_draining())
        {
            return Err(StoreError::InvalidName(format!(
                "{} is the last data directory taking new mail; add another one first",
                path.display()
            )));
        }
        self.set_draining(d, true)?;
        let mut report = RebalanceReport::default();
        // Twice: a delivery that picked this disk just before the flag was
        // set may have started a new segment here during the first pass.
        for _ in 0..2 {
            self.seal_active(d)?;
            let pass = self.rebalance_locked()?;
            report.moved_blobs += pass.moved_blobs;
            report.moved_bytes += pass.moved_bytes;
            report.compaction.segments += pass.compaction.segments;
            report.compaction.moved_blobs += pass.compaction.moved_blobs;
            report.compaction.moved_bytes += pass.compaction.moved_bytes;
            report.compaction.freed_bytes += pass.compaction.freed_bytes;
            // Segments with no garbage but nothing live (empty ones) too.
            let empty = self.compact_locked(|_, info| info.disk == d.disk.id && info.sealed)?;
            report.compaction.segments += empty.segments;
            report.compaction.freed_bytes += empty.freed_bytes;
        }
        let left = self
            .all_segments()?
            .iter()
            .filter(|(_, s)| s.disk == d.disk.id)
            .count();
        report.left_on_drained = Some(left);
        Ok(report)
    }

    /// Takes a directory back into placement after a drain.
    pub fn undrain(&self, path: &Path) -> Result<(), StoreError> {
        let d = self
            .disks
            .iter()
            .find(|d| d.disk.path == path)
            .ok_or_else(|| {
                StoreError::InvalidName(format!(
                    "{} is not one of the store's data directories",
                    path.display()
                ))
            })?;
        self.set_draining(d, false)
    }

    fn set_draining(&self, d: &DiskState, draining: bool) -> Result<(), StoreError> {
        let record = disks::DiskRecord {
            path: d.disk.path.clone(),
            draining,
        };
        self.disks_tree
            .insert(d.disk.id.to_be_bytes(), disks::encode_record(&record)?)?;
        self.db.flush()?;
        d.draining.store(draining, Ordering::Relaxed);
        Ok(())
    }

    fn seal_active(&self, d: &DiskState) -> Result<(), StoreError> {
        let mut guard = self.lock_active(d)?;
        if let Some(active) = guard.take() {
            self.seal(d, active.number)?;
        }
        Ok(())
    }

    /// The map of a segment for fsck (None if the file is missing).
    pub fn map_for_check(
        &self,
        number: u32,
        info: &SegmentInfo,
    ) -> Result<Option<Arc<MappedSegment>>, StoreError> {
        let d = self
            .disk(info.disk)
            .ok_or_else(|| StoreError::Corrupt(format!("segment {number} on unknown disk")))?;
        if info.sealed {
            return self.map(d, number, info.len);
        }
        // The active segment is appended to: map a private snapshot of its
        // committed part by reading it instead.
        let path = segments::path(&d.disk.blobs_dir(), number);
        if !path.exists() {
            return Ok(None);
        }
        MappedSegment::read_prefix(&path, info.len).map(|m| Some(Arc::new(m)))
    }
}
