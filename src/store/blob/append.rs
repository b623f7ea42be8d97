//! Appending blobs to a disk's active segment: the write under the disk's
//! append lock, the group-committed `fdatasync` after it, the index entry
//! once a covering sync has finished, and segment rotation and sealing
//! (see the invariants in `blob/mod.rs`).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::record::{self, BlobId, BlobLocation, HEADER_LEN};
use super::segments::{self, SegmentInfo};
use super::{abort, BlobStore, DiskState, TxResult};
use crate::fsutil::group_sync::GroupSync;
use crate::store::StoreError;

/// The segment a disk currently appends to.
pub(super) struct ActiveSegment {
    pub(super) number: u32,
    file: Arc<File>,
    /// Bytes written (under the disk's append lock); the committed length
    /// in sled follows once they are synced.
    len: u64,
    /// Appends share its `fdatasync`s (group commit).
    sync: Arc<GroupSync>,
    /// Appends written but not yet indexed: the segment is sealed only
    /// when none is left, so no index entry lands after the seal.
    in_flight: Arc<AtomicU32>,
    /// A sync failed: what was written may not be on disk, so the next
    /// append starts a new segment.
    failed: Arc<AtomicBool>,
}

impl ActiveSegment {
    pub(super) fn new(number: u32, file: File, len: u64) -> ActiveSegment {
        let file = Arc::new(file);
        ActiveSegment {
            number,
            sync: Arc::new(GroupSync::for_file_data(file.clone())),
            file,
            len,
            in_flight: Arc::new(AtomicU32::new(0)),
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Waits until every append written to this segment was indexed (or
    /// failed). Called under the disk's append lock before sealing;
    /// appends in flight need no lock to finish.
    pub(super) fn wait_idle(&self) {
        while self.in_flight.load(Ordering::Acquire) > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// Counts an append in flight until dropped (also on an error path).
struct InFlight(Arc<AtomicU32>);

impl InFlight {
    fn start(counter: &Arc<AtomicU32>) -> InFlight {
        counter.fetch_add(1, Ordering::AcqRel);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl BlobStore {
    /// Stores `bytes` unless a blob with the same hash is already indexed.
    /// New blobs are indexed with refcount 0; the op that delivers them
    /// raises it. The caller's sled flush after writing the op makes the
    /// index entry durable together with the op.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobId, StoreError> {
        let id = BlobId::of(bytes);
        if self.index.contains_key(id.0)? {
            return Ok(id);
        }
        let home = self.home_of(&id)?;
        self.append(home, &[(id, bytes)], |index, _segs, locs| {
            // Someone else may have stored the same bytes meanwhile (on a
            // disk chosen before a rebalance): keep theirs, ours is garbage.
            let loc = locs[0];
            if index.get(id.0)?.is_some() {
                return Ok(loc.record_len());
            }
            index.insert(&id.0, &loc.encode())?;
            Ok(0)
        })?;
        Ok(id)
    }

    /// Stores several blobs with one fsync per data directory (seeding a
    /// store from a peer's snapshot, where one sync per blob would make
    /// the copy as slow as the disk's sync rate). Same rules as `put`:
    /// bytes already indexed are not stored again; new ones get
    /// refcount 0.
    pub fn put_many(&self, blobs: &[&[u8]]) -> Result<Vec<BlobId>, StoreError> {
        let ids: Vec<BlobId> = blobs.iter().map(|b| BlobId::of(b)).collect();
        let mut by_disk: HashMap<u16, Vec<(BlobId, &[u8])>> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (id, bytes) in ids.iter().zip(blobs) {
            if !seen.insert(*id) || self.index.contains_key(id.0)? {
                continue;
            }
            by_disk
                .entry(self.home_of(id)?.disk.id)
                .or_default()
                .push((*id, bytes));
        }
        for (disk, records) in by_disk {
            let d = self
                .disk(disk)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown disk {disk}")))?;
            self.append(d, &records, |index, _segs, locs| {
                let mut garbage = 0;
                for ((id, _), loc) in records.iter().zip(locs) {
                    if index.get(id.0)?.is_some() {
                        garbage += loc.record_len();
                    } else {
                        index.insert(&id.0, &loc.encode())?;
                    }
                }
                Ok(garbage)
            })?;
        }
        Ok(ids)
    }

    /// Appends `records` to disk `d`'s active segment, fsyncs, then runs
    /// `index` in a transaction with the new locations (refcount 0); it
    /// returns how many of the appended bytes are garbage already. The
    /// segment's committed length moves in the same transaction.
    ///
    /// Group commit: the bytes are written under the disk's append lock
    /// (so records never overlap and a failed write is overwritten by the
    /// next), but the `fdatasync` and the transaction happen after the
    /// lock is released, and appends waiting at the same moment share one
    /// sync (`fsutil::group_sync`: each waits for a sync that began after
    /// its write). Committed lengths may so arrive out of order; the
    /// segment's length only grows (the largest end wins).
    pub(super) fn append<F>(
        &self,
        d: &DiskState,
        records: &[(BlobId, &[u8])],
        index: F,
    ) -> Result<Vec<BlobLocation>, StoreError>
    where
        F: Fn(&TransactionalTree, &TransactionalTree, &[BlobLocation]) -> TxResult<u64>,
    {
        let total: u64 = records
            .iter()
            .map(|(_, b)| HEADER_LEN + b.len() as u64)
            .sum();
        let (locs, number, end, sync, failed, _in_flight) = {
            let mut guard = self.lock_active(d)?;
            let limit = self.segment_limit.load(Ordering::Relaxed);
            let rotate = match guard.as_ref() {
                None => true,
                Some(a) => {
                    a.failed.load(Ordering::Acquire)
                        || (a.len > 0 && a.len.saturating_add(total) > limit)
                }
            };
            if rotate {
                if let Some(old) = guard.take() {
                    old.wait_idle();
                    self.seal(d, old.number)?;
                }
                *guard = Some(self.start_segment(d)?);
            }
            let active = guard
                .as_mut()
                .ok_or_else(|| StoreError::Corrupt("no active segment".into()))?;
            let mut locs = Vec::with_capacity(records.len());
            let mut buf = Vec::with_capacity(total as usize);
            let mut offset = active.len;
            for (id, bytes) in records {
                locs.push(BlobLocation {
                    segment: active.number,
                    offset,
                    len: bytes.len() as u64,
                    refcount: 0,
                });
                buf.extend_from_slice(&record::encode_record(id, bytes));
                offset += HEADER_LEN + bytes.len() as u64;
            }
            // If this fails the length stays where it was; the partial
            // bytes are overwritten by the next append or cut off by the
            // next open.
            active.file.write_all_at(&buf, active.len)?;
            active.len = offset;
            (
                locs,
                active.number,
                offset,
                active.sync.clone(),
                active.failed.clone(),
                InFlight::start(&active.in_flight),
            )
        };
        // The record bytes become durable here; only now may the index
        // point at them.
        if let Err(e) = sync.sync() {
            failed.store(true, Ordering::Release);
            return Err(e.into());
        }
        (&self.index, &self.segments)
            .transaction(|(idx, segs)| {
                let garbage = index(idx, segs, &locs)?;
                let key = segments::key(number);
                let mut info = match segs.get(key)? {
                    Some(v) => SegmentInfo::decode(&v).or_else(abort)?,
                    None => {
                        return abort(StoreError::Corrupt(format!("segment {number} vanished")))
                    }
                };
                info.len = info.len.max(end);
                info.garbage = info.garbage.saturating_add(garbage);
                segs.insert(&key, info.encode().or_else(abort)?)?;
                Ok(())
            })
            .map_err(StoreError::from_tx)?;
        d.counters
            .writes
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        d.counters.bytes_written.fetch_add(total, Ordering::Relaxed);
        Ok(locs)
    }

    /// Starts a new segment on `d`: entry first (flushed), then the file.
    fn start_segment(&self, d: &DiskState) -> Result<ActiveSegment, StoreError> {
        let number = self.next_segment.fetch_add(1, Ordering::Relaxed);
        if number == u32::MAX {
            return Err(StoreError::Corrupt("segment numbers exhausted".into()));
        }
        let info = SegmentInfo {
            disk: d.disk.id,
            ..SegmentInfo::default()
        };
        self.segments
            .insert(segments::key(number), info.encode()?)?;
        self.db.flush()?;
        let file = segments::open_for_append(&d.disk.blobs_dir(), number, 0)?
            .ok_or_else(|| StoreError::Corrupt(format!("cannot start segment {number}")))?;
        Ok(ActiveSegment::new(number, file, 0))
    }

    /// Marks a segment sealed: from now on it is only read (through a map)
    /// until compaction deletes it.
    pub(super) fn seal(&self, d: &DiskState, number: u32) -> Result<(), StoreError> {
        self.segments
            .transaction(|segs| {
                let key = segments::key(number);
                if let Some(v) = segs.get(key)? {
                    let mut info = SegmentInfo::decode(&v).or_else(abort)?;
                    info.sealed = true;
                    segs.insert(&key, info.encode().or_else(abort)?)?;
                }
                Ok(())
            })
            .map_err(StoreError::from_tx)?;
        segments::make_read_only(&d.disk.blobs_dir(), number)
    }
}
