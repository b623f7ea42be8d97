//! Blob store: message bytes, content-addressed by BLAKE3, appended to
//! segment files spread over several data directories (one per disk).
//! Single-instance: the same bytes are stored once and refcounted by the
//! ops that deliver them (`state.rs` raises and lowers the counts).
//!
//! Pieces: `append` (writes to the active segment, group-committed syncs,
//! rotation), `record` (record format, index entry), `segments` (segment files
//! and their bookkeeping), `disks` (data directory identity), `placement`
//! (which directory a blob belongs on), `mapped` (memory maps of sealed
//! segments: the only `unsafe`), `relocate` (compaction, rebalance, drain).
//!
//! Index: sled tree `blobs`, hash -> [`BlobLocation`] (segment, offset,
//! length, refcount).
//!
//! Invariants:
//! - an index entry is written only after its record is fsynced, in the
//!   same sled transaction that raises its segment's committed length, so
//!   every indexed record is complete on disk;
//! - an entry with refcount 0 is either a blob whose delivering op is in
//!   flight, or one left by a delivery interrupted by a crash; `open` sweeps
//!   the latter (nothing is in flight then) and counts their bytes as garbage;
//! - when a refcount drops to 0 the entry is removed and its record counted
//!   as garbage in its segment, in the same transaction;
//! - each data directory has its own active segment and append lock, so
//!   writes to different disks do not wait for each other; the lock
//!   covers only the write, and appends to one segment at the same moment
//!   share one `fdatasync` (group commit, see `append`);
//! - a segment is sealed only once every append written to it has been
//!   indexed or has failed, so its committed length is final when sealed.
//!
//! Untrusted input: message bytes are stored opaquely; segment contents are
//! checked against the index (magic, length, hash) on every read.

mod append;
mod disks;
pub mod mapped;
mod placement;
pub mod record;
mod relocate;
pub mod segments;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

pub use disks::{DataDirSpec, Disk};
pub use record::{BlobId, BlobLocation};
pub use relocate::{CompactReport, RebalanceReport};
pub use segments::SegmentInfo;

use super::StoreError;
use append::ActiveSegment;
use mapped::MappedSegment;
use placement::Candidate;

/// A segment is sealed once appending would take it past this size.
pub const DEFAULT_SEGMENT_LIMIT: u64 = 64 * 1024 * 1024;

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Reads and writes of one data directory since the store opened.
#[derive(Default)]
pub struct DiskCounters {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
}

/// One data directory at run time.
pub struct DiskState {
    pub disk: Disk,
    draining: AtomicBool,
    /// None until the first append, and again while draining.
    active: Mutex<Option<ActiveSegment>>,
    pub counters: DiskCounters,
}

impl DiskState {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

pub struct BlobStore {
    db: sled::Db,
    index: sled::Tree,
    segments: sled::Tree,
    disks_tree: sled::Tree,
    disks: Vec<DiskState>,
    next_segment: AtomicU32,
    /// Maps of sealed segments, made on first read.
    maps: RwLock<HashMap<u32, Arc<MappedSegment>>>,
    segment_limit: AtomicU64,
    /// One compaction, rebalance or drain at a time.
    maintenance: Mutex<()>,
}

impl BlobStore {
    /// Opens the blob store over `specs` (one per data directory) with its
    /// index in `db`; `meta` holds the store's identity.
    pub fn open(
        db: &sled::Db,
        meta: &sled::Tree,
        specs: &[DataDirSpec],
    ) -> Result<BlobStore, StoreError> {
        let index = db.open_tree("blobs")?;
        let segments_tree = db.open_tree("segments")?;
        let disks_tree = db.open_tree("disks")?;
        let all = segments::load_all(&segments_tree)?;
        let disks = disks::register(meta, &disks_tree, specs, |d| {
            all.iter().filter(|(_, s)| s.disk == d).count()
        })?;
        let next = all.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let store = BlobStore {
            db: db.clone(),
            index,
            segments: segments_tree,
            disks_tree,
            disks: disks
                .into_iter()
                .map(|disk| DiskState {
                    draining: AtomicBool::new(disk.draining),
                    disk,
                    active: Mutex::new(None),
                    counters: DiskCounters::default(),
                })
                .collect(),
            next_segment: AtomicU32::new(next.saturating_add(1)),
            maps: RwLock::new(HashMap::new()),
            segment_limit: AtomicU64::new(DEFAULT_SEGMENT_LIMIT),
            maintenance: Mutex::new(()),
        };
        store.remove_leftover_files(&all)?;
        store.resume_active_segments(&all)?;
        store.sweep_unreferenced()?;
        db.flush()?;
        Ok(store)
    }

    #[cfg(test)]
    pub fn set_segment_limit(&self, limit: u64) {
        self.segment_limit.store(limit, Ordering::Relaxed);
    }

    /// The sled trees ops touch: the index and the segment table.
    pub fn index_tree(&self) -> &sled::Tree {
        &self.index
    }

    pub fn segments_tree(&self) -> &sled::Tree {
        &self.segments
    }

    pub fn disks(&self) -> &[DiskState] {
        &self.disks
    }

    /// Segment files on disk without an entry are what a compaction left
    /// after forgetting the segment but before unlinking it.
    fn remove_leftover_files(&self, all: &[(u32, SegmentInfo)]) -> Result<(), StoreError> {
        for d in &self.disks {
            let dir = d.disk.blobs_dir();
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(number) = name.to_str().and_then(segments::parse_file_name) else {
                    continue;
                };
                if !all.iter().any(|(n, s)| *n == number && s.disk == d.disk.id) {
                    tracing::info!(file = %entry.path().display(), "removing segment left by an interrupted compaction");
                    std::fs::remove_file(entry.path())?;
                    segments::sync_dir(&dir)?;
                }
            }
        }
        Ok(())
    }

    /// Reopens each disk's active segment (sealing extra unsealed ones left
    /// by a crash during rotation).
    fn resume_active_segments(&self, all: &[(u32, SegmentInfo)]) -> Result<(), StoreError> {
        for d in &self.disks {
            let mut open: Vec<(u32, SegmentInfo)> = all
                .iter()
                .filter(|(_, s)| s.disk == d.disk.id && !s.sealed)
                .copied()
                .collect();
            let last = open.pop();
            for (number, _) in open {
                self.seal(d, number)?;
            }
            let Some((number, info)) = last else { continue };
            if d.is_draining() {
                self.seal(d, number)?;
                continue;
            }
            match segments::open_for_append(&d.disk.blobs_dir(), number, info.len)? {
                Some(file) => {
                    let mut active = self.lock_active(d)?;
                    *active = Some(ActiveSegment::new(number, file, info.len));
                }
                None => self.seal(d, number)?,
            }
        }
        Ok(())
    }

    /// Removes refcount-0 entries (blobs whose delivery never committed).
    /// Only safe while no delivery is in flight: at open.
    fn sweep_unreferenced(&self) -> Result<(), StoreError> {
        let mut swept = 0u64;
        for entry in self.index.iter() {
            let (key, value) = entry?;
            let loc = BlobLocation::decode(&value)?;
            if loc.refcount > 0 {
                continue;
            }
            (&self.index, &self.segments)
                .transaction(|(index, segs)| {
                    if let Some(cur) = index.get(&key)? {
                        let cur = BlobLocation::decode(&cur).or_else(abort)?;
                        if cur.refcount == 0 {
                            index.remove(&key)?;
                            add_garbage(segs, cur.segment, cur.record_len())?;
                        }
                    }
                    Ok(())
                })
                .map_err(StoreError::from_tx)?;
            swept += 1;
        }
        if swept > 0 {
            tracing::info!(
                blobs = swept,
                "reclaimed blobs of deliveries interrupted by a crash"
            );
        }
        Ok(())
    }

    fn lock_active<'a>(
        &self,
        d: &'a DiskState,
    ) -> Result<MutexGuard<'a, Option<ActiveSegment>>, StoreError> {
        d.active.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The directories new blobs may go to: all but the draining ones
    /// (all of them if every one is draining, so writes never stop).
    fn candidates(&self) -> Vec<Candidate> {
        let pick = |draining_ok: bool| -> Vec<Candidate> {
            self.disks
                .iter()
                .filter(|d| draining_ok || !d.is_draining())
                .map(|d| Candidate {
                    disk: d.disk.id,
                    weight: d.disk.weight.max(1),
                })
                .collect()
        };
        let c = pick(false);
        if c.is_empty() {
            pick(true)
        } else {
            c
        }
    }

    /// The disk `id` belongs on.
    fn home_of(&self, id: &BlobId) -> Result<&DiskState, StoreError> {
        let disk = placement::choose(id, &self.candidates());
        self.disks
            .iter()
            .find(|d| Some(d.disk.id) == disk)
            .ok_or_else(|| StoreError::Corrupt("no data directory to place a blob on".into()))
    }

    fn disk(&self, id: u16) -> Option<&DiskState> {
        self.disks.iter().find(|d| d.disk.id == id)
    }

    /// Where blob `id` lives, if indexed.
    pub fn location(&self, id: &BlobId) -> Result<Option<BlobLocation>, StoreError> {
        self.index
            .get(id.0)?
            .map(|v| BlobLocation::decode(&v))
            .transpose()
    }

    pub fn segment_info(&self, number: u32) -> Result<Option<SegmentInfo>, StoreError> {
        self.segments
            .get(segments::key(number))?
            .map(|v| SegmentInfo::decode(&v))
            .transpose()
    }

    /// The bytes of blob `id`, verified against its hash.
    pub fn get(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        // A compaction may move the blob between reading its location and
        // reading the segment; the second look finds the new place.
        for _ in 0..4 {
            let Some(loc) = self.location(id)? else {
                return Ok(None);
            };
            if let Some(bytes) = self.read_at(id, &loc)? {
                return Ok(Some(bytes));
            }
        }
        Err(StoreError::Corrupt(format!(
            "blob {id} keeps pointing at a segment that is gone"
        )))
    }

    /// Reads the record at `loc`; None if its segment is gone (moved by a
    /// compaction since `loc` was read).
    fn read_at(&self, id: &BlobId, loc: &BlobLocation) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(info) = self.segment_info(loc.segment)? else {
            return Ok(None);
        };
        let d = self.disk(info.disk).ok_or_else(|| {
            StoreError::Corrupt(format!("segment {} is on an unknown disk", loc.segment))
        })?;
        let record_len = loc.record_len();
        if loc.offset.saturating_add(record_len) > info.len {
            return Err(StoreError::Corrupt(format!(
                "blob {id} lies past the end of segment {}",
                loc.segment
            )));
        }
        let bytes = if info.sealed {
            let Some(map) = self.map(d, loc.segment, info.len)? else {
                return Ok(None);
            };
            let rec = map.slice(loc.offset, record_len).ok_or_else(|| {
                StoreError::Corrupt(format!("segment {} is shorter than its index", loc.segment))
            })?;
            record::verify(rec, id, loc)?.to_vec()
        } else {
            let path = segments::path(&d.disk.blobs_dir(), loc.segment);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let len = usize::try_from(record_len)
                .map_err(|_| StoreError::Corrupt("record too large".into()))?;
            let mut rec = vec![0u8; len];
            file.read_exact_at(&mut rec, loc.offset)?;
            record::verify(&rec, id, loc)?.to_vec()
        };
        d.counters.reads.fetch_add(1, Ordering::Relaxed);
        d.counters
            .bytes_read
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(Some(bytes))
    }

    /// The map of sealed segment `number`, made on first use. None if the
    /// file is gone (compacted away).
    fn map(
        &self,
        d: &DiskState,
        number: u32,
        len: u64,
    ) -> Result<Option<Arc<MappedSegment>>, StoreError> {
        if let Some(m) = self
            .maps
            .read()
            .map_err(|_| StoreError::Poisoned)?
            .get(&number)
        {
            return Ok(Some(m.clone()));
        }
        let path = segments::path(&d.disk.blobs_dir(), number);
        let mapped = match MappedSegment::open(&path, len) {
            Ok(m) => Arc::new(m),
            Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        self.maps
            .write()
            .map_err(|_| StoreError::Poisoned)?
            .insert(number, mapped.clone());
        Ok(Some(mapped))
    }

    /// Path of segment `number` (tests).
    #[cfg(test)]
    pub fn segment_file(&self, number: u32) -> Result<std::path::PathBuf, StoreError> {
        let info = self
            .segment_info(number)?
            .ok_or_else(|| StoreError::Corrupt(format!("no segment {number}")))?;
        let d = self
            .disk(info.disk)
            .ok_or_else(|| StoreError::Corrupt(format!("segment {number} on unknown disk")))?;
        Ok(segments::path(&d.disk.blobs_dir(), number))
    }

    /// Stops compaction, rebalance and every append until dropped (fsck
    /// checks a store that holds still). Lock order: maintenance, then the
    /// disks' append locks in order; nothing takes them the other way.
    pub fn freeze(&self) -> Result<Frozen<'_>, StoreError> {
        let maintenance = self.maintenance.lock().map_err(|_| StoreError::Poisoned)?;
        let mut active = Vec::with_capacity(self.disks.len());
        for d in &self.disks {
            let guard = self.lock_active(d)?;
            // Appends written before the lock was taken finish their sync
            // and index entry without it; wait for them.
            if let Some(segment) = guard.as_ref() {
                segment.wait_idle();
            }
            active.push(guard);
        }
        Ok(Frozen {
            _maintenance: maintenance,
            _active: active,
        })
    }

    /// Keeps every segment file where it is until dropped: no
    /// compaction, rebalance or drain runs meanwhile (appends go on). A
    /// snapshot being sent holds it, so the bytes of a blob it names stay
    /// readable at the place the snapshot recorded even if the message is
    /// deleted meanwhile (`read_pinned`). Lock order as `freeze`.
    pub fn pin_segments(&self) -> Result<MutexGuard<'_, ()>, StoreError> {
        self.maintenance.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The bytes of the record at `loc` (read while `pin_segments` is
    /// held, so it is still there even if its index entry is gone).
    pub fn read_pinned(
        &self,
        id: &BlobId,
        loc: &BlobLocation,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_at(id, loc)
    }

    /// Every segment, by number.
    pub fn all_segments(&self) -> Result<Vec<(u32, SegmentInfo)>, StoreError> {
        segments::load_all(&self.segments)
    }
}

/// Held while the blob store must not change (see `BlobStore::freeze`).
pub struct Frozen<'a> {
    _maintenance: MutexGuard<'a, ()>,
    _active: Vec<MutexGuard<'a, Option<ActiveSegment>>>,
}

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Counts `bytes` of segment `number` as garbage (inside a transaction).
/// A segment that is gone already (compacted) needs no count.
pub fn add_garbage(segs: &TransactionalTree, number: u32, bytes: u64) -> TxResult<()> {
    let key = segments::key(number);
    if let Some(v) = segs.get(key)? {
        let mut info = SegmentInfo::decode(&v).or_else(abort)?;
        info.garbage = info.garbage.saturating_add(bytes).min(info.len);
        segs.insert(&key, info.encode().or_else(abort)?)?;
    }
    Ok(())
}
