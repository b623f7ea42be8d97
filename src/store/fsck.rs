//! `campusmail store fsck`: checks every blob hash, every reference count
//! and every index entry, and with `repair` fixes what can be fixed.
//!
//! What is checked, and what repair does:
//! - each segment: the file exists and covers its committed length, its
//!   records chain from 0 to that length, and its garbage count matches
//!   the records no index entry points at (repair: set the count);
//! - each indexed blob: its record is where the index says and its bytes
//!   hash to its id (a mismatch cannot be repaired here: the messages that
//!   use it are named so they can be restored from the peer or a backup);
//! - each reference count equals the number of messages using the blob
//!   (repair: set it; a blob nobody uses is removed and becomes garbage);
//! - each message's blob is indexed; each folder listing entry names an
//!   existing message in that folder and every message is listed once
//!   (repair: remove or add entries); folder counts and mailbox usage equal
//!   what the messages add up to (repair: rewrite them);
//! - the conversation index is exactly what the threaded messages imply
//!   (repair: remove or add entries), and so are the grouped list's
//!   heads, members and counts per folder (`thread_heads.rs`);
//! - each delivery row counts the messages naming it (repair: set the
//!   count; a row no message names is removed);
//! - the sort index (for the folders that have one) and the `orphans`
//!   entries (messages waiting for a folder) are exactly what the
//!   messages imply (repair: remove or add entries); each message is in a system folder or a live user folder,
//!   and waits only for a folder not known here (not repairable here: the
//!   ops that would settle it are missing; named so it can be looked at);
//!   each folder record decodes.
//!
//! - the search index: every live delivery has its text (or waits for the
//!   indexer) and indexed announcements their per-mailbox entries, nothing else (repair: rebuild the index,
//!   `search::index`).
//!
//! Repairs touch only state derived from the op log (counts, listings,
//! refcounts); no op and no message bytes are ever rewritten or removed.
//! The store holds still while fsck runs (deliveries wait; run it in a quiet
//! hour on a big store, or with the appliance stopped).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::blob::record::{self, BlobId, BlobLocation, HEADER_LEN};
use super::blob::segments::{self, SegmentInfo};
use super::folders::{self, FolderRecord};
use super::id::MessageId;
use super::message_rows;
use super::sort_index;
use super::state::{self, FlagsRecord, MessageRecord};
use super::thread_heads;
use super::threads;
use super::{FsckReport, Store, StoreError};

/// What the messages say the derived state should be.
#[derive(Default)]
struct Expected {
    refs: HashMap<BlobId, u64>,
    listing: HashSet<Vec<u8>>,
    folders: BTreeMap<Vec<u8>, (u64, u64)>,
    usage: BTreeMap<Vec<u8>, (u64, u64)>,
    /// `sort_index` and `orphans` keys, with their values.
    sorted: HashMap<Vec<u8>, Vec<u8>>,
    /// `threads` keys (empty values).
    threads: HashMap<Vec<u8>, Vec<u8>>,
    /// The grouped list's trees.
    heads: thread_heads::ExpectedHeads,
    orphans: HashMap<Vec<u8>, Vec<u8>>,
    /// Messages per delivery row (`message_rows.rs`).
    deliveries: BTreeMap<Vec<u8>, u64>,
}

impl Store {
    /// Checks the whole store; with `repair`, fixes derived state.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport, StoreError> {
        let _frozen = self.blobs.freeze()?;
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let mut report = FsckReport::default();
        let found = self.check_segments(repair, &mut report)?;
        let expected = self.check_messages(&mut report)?;
        self.check_index(repair, &found, &expected, &mut report)?;
        self.check_listing(repair, &expected, &mut report)?;
        self.check_derived(
            repair,
            &self.trees.sort_index,
            &expected.sorted,
            "sort index",
            &mut report,
        )?;
        self.check_derived(
            repair,
            &self.trees.threads,
            &expected.threads,
            "conversation index",
            &mut report,
        )?;
        for (tree, want, what) in [
            (
                &self.trees.thread_heads,
                &expected.heads.heads,
                "conversation list",
            ),
            (
                &self.trees.thread_members,
                &expected.heads.members,
                "conversation list's members",
            ),
            (
                &self.trees.thread_tips,
                &expected.heads.tips,
                "conversation list's newest messages",
            ),
        ] {
            self.check_derived(repair, tree, want, what, &mut report)?;
        }
        self.check_derived(
            repair,
            &self.trees.orphans,
            &expected.orphans,
            "list of messages waiting for a folder",
            &mut report,
        )?;
        self.check_folder_defs(&mut report)?;
        self.check_deliveries(repair, &expected.deliveries, &mut report)?;
        self.check_search_index(repair, &mut report)?;
        self.record_fsck(&report)?;
        self.db.flush()?;
        Ok(report)
    }

    /// Walks every segment; returns the blobs found where the index says.
    fn check_segments(
        &self,
        repair: bool,
        report: &mut FsckReport,
    ) -> Result<HashSet<BlobId>, StoreError> {
        let mut found = HashSet::new();
        for (number, info) in self.blobs.all_segments()? {
            report.segments += 1;
            let map = match self.blobs.map_for_check(number, &info) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    report.problems.push(format!(
                        "segment {number} is missing from its data directory; the blobs in it are lost"
                    ));
                    continue;
                }
                Err(e) => {
                    report.problems.push(format!("segment {number}: {e}"));
                    continue;
                }
            };
            let mut garbage = 0u64;
            let mut pos = 0u64;
            while pos < info.len {
                let Some((len, id)) = map.slice(pos, HEADER_LEN).and_then(record::parse_header)
                else {
                    report.problems.push(format!(
                        "segment {number}: the record at byte {pos} is damaged; the rest of the segment cannot be read"
                    ));
                    break;
                };
                let rec_len = HEADER_LEN.saturating_add(len);
                if pos.saturating_add(rec_len) > info.len {
                    report.problems.push(format!(
                        "segment {number}: the record at byte {pos} runs past the segment's end"
                    ));
                    break;
                }
                match self.blobs.location(&id)? {
                    Some(loc) if loc.segment == number && loc.offset == pos => {
                        let bytes = map.slice(pos, rec_len).unwrap_or(&[]);
                        match record::verify(bytes, &id, &loc) {
                            Ok(_) => {
                                report.blobs += 1;
                                found.insert(id);
                            }
                            Err(e) => report.problems.push(format!("blob {id}: {e}")),
                        }
                    }
                    _ => garbage += rec_len,
                }
                pos = pos.saturating_add(rec_len);
            }
            if garbage != info.garbage {
                let what = format!(
                    "segment {number} counted {} garbage bytes; the records say {garbage}",
                    info.garbage
                );
                if repair {
                    let fixed = SegmentInfo { garbage, ..info };
                    self.blobs
                        .segments_tree()
                        .insert(segments::key(number), fixed.encode()?)?;
                    report.repaired.push(what);
                } else {
                    report.problems.push(what);
                }
            }
        }
        Ok(found)
    }

    fn check_messages(&self, report: &mut FsckReport) -> Result<Expected, StoreError> {
        let mut e = Expected::default();
        for entry in message_rows::all(&self.trees.messages, &self.trees.deliveries) {
            let (id, rec) = entry?;
            report.messages += 1;
            *e.deliveries
                .entry(message_rows::delivery_key(&id, &rec)?)
                .or_default() += 1;
            *e.refs.entry(rec.blob).or_default() += 1;
            if self.blobs.location(&rec.blob)?.is_none() {
                report.problems.push(format!(
                    "message {id} in {}/{} has lost its bytes (blob {} is not stored); \
                     restore it from the peer or a backup",
                    rec.mailbox, rec.folder, rec.blob
                ));
            }
            e.listing.insert(state::folder_entry_key(&rec, &id));
            if let Some(k) = threads::key(&rec, &id) {
                e.threads.insert(k, Vec::new());
            }
            e.heads.add(&id, &rec);
            let mark = state::stats_key(&rec.mailbox, &rec.folder);
            if self.trees.sorted_folders.contains_key(mark)? {
                for key in sort_index::entries(&rec, &id) {
                    e.sorted.insert(key, Vec::new());
                }
            }
            self.check_message_folder(&id, &rec, &mut e, report)?;
            let seen = match self.trees.flags.get(id.as_bytes())? {
                Some(v) => state::decode::<FlagsRecord>(&v)?.seen,
                None => false,
            };
            let f = e
                .folders
                .entry(state::stats_key(&rec.mailbox, &rec.folder))
                .or_default();
            f.0 += 1;
            f.1 += u64::from(!seen);
            let u = e.usage.entry(rec.mailbox.as_bytes().to_vec()).or_default();
            u.0 += rec.size;
            u.1 += 1;
        }
        Ok(e)
    }

    /// The message's folder is alive; the folder it waits for is unknown.
    fn check_message_folder(
        &self,
        id: &MessageId,
        rec: &MessageRecord,
        e: &mut Expected,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        let def = |folder: &str| -> Result<Option<FolderRecord>, StoreError> {
            self.trees
                .folder_defs
                .get(folders::def_key(&rec.mailbox, folder))?
                .map(|v| state::decode::<FolderRecord>(&v))
                .transpose()
        };
        let alive =
            folders::is_system(&rec.folder) || def(&rec.folder)?.is_some_and(|d| d.is_alive());
        if !alive {
            report.problems.push(format!(
                "message {id} of {} is in folder {:?}, which is not a live folder",
                rec.mailbox, rec.folder
            ));
        }
        if let Some(wanted) = &rec.wanted {
            if def(wanted)?.is_some_and(|d| d.is_alive() || d.deleted.is_some()) {
                report.problems.push(format!(
                    "message {id} of {} still waits for folder {wanted:?}, which is settled",
                    rec.mailbox
                ));
            }
            e.orphans
                .insert(folders::orphan_key(&rec.mailbox, wanted, id), Vec::new());
        }
        Ok(())
    }

    /// Compares a derived tree with what the messages imply.
    fn check_derived(
        &self,
        repair: bool,
        tree: &sled::Tree,
        expected: &HashMap<Vec<u8>, Vec<u8>>,
        what: &str,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        let mut present = HashSet::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            match expected.get(&key[..]) {
                Some(want) if want[..] == value[..] => {
                    present.insert(key.to_vec());
                }
                _ => {
                    let text = format!("a {what} entry names no message that belongs there");
                    if repair {
                        tree.remove(&key)?;
                        report.repaired.push(text);
                    } else {
                        report.problems.push(text);
                    }
                }
            }
        }
        for (key, value) in expected {
            if present.contains(key) {
                continue;
            }
            let text = format!("a message is missing from the {what}");
            if repair {
                tree.insert(key.as_slice(), value.as_slice())?;
                report.repaired.push(text);
            } else {
                report.problems.push(text);
            }
        }
        Ok(())
    }

    /// Every folder record decodes.
    fn check_folder_defs(&self, report: &mut FsckReport) -> Result<(), StoreError> {
        for entry in self.trees.folder_defs.iter() {
            let (key, value) = entry?;
            if state::decode::<FolderRecord>(&value).is_err() {
                report.problems.push(format!(
                    "the folder record {:?} cannot be read",
                    String::from_utf8_lossy(&key).replace('\0', "/")
                ));
            }
        }
        Ok(())
    }

    fn check_index(
        &self,
        repair: bool,
        found: &HashSet<BlobId>,
        expected: &Expected,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        let index = self.blobs.index_tree();
        for entry in index.iter() {
            let (key, value) = entry?;
            let id = BlobId::from_key(&key)?;
            let loc = BlobLocation::decode(&value)?;
            if !found.contains(&id) {
                report.problems.push(format!(
                    "blob {id} should be in segment {} at byte {}, but no intact record is there",
                    loc.segment, loc.offset
                ));
                continue;
            }
            let actual = expected.refs.get(&id).copied().unwrap_or(0);
            if actual == loc.refcount {
                if actual == 0 {
                    report.unreferenced += 1;
                }
                continue;
            }
            let what = format!(
                "blob {id} counted {} reference(s); {actual} message(s) use it",
                loc.refcount
            );
            if !repair {
                report.problems.push(what);
                continue;
            }
            if actual == 0 {
                index.remove(&key)?;
                self.bump_garbage(loc.segment, loc.record_len())?;
            } else {
                index.insert(
                    &key,
                    &BlobLocation {
                        refcount: actual,
                        ..loc
                    }
                    .encode(),
                )?;
            }
            report.repaired.push(what);
        }
        Ok(())
    }

    fn bump_garbage(&self, number: u32, bytes: u64) -> Result<(), StoreError> {
        let tree = self.blobs.segments_tree();
        if let Some(v) = tree.get(segments::key(number))? {
            let mut info = SegmentInfo::decode(&v)?;
            info.garbage = info.garbage.saturating_add(bytes).min(info.len);
            tree.insert(segments::key(number), info.encode()?)?;
        }
        Ok(())
    }

    fn check_listing(
        &self,
        repair: bool,
        expected: &Expected,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        let mut listed = HashSet::new();
        for entry in self.trees.folders.iter() {
            let (key, _) = entry?;
            if expected.listing.contains(&key[..]) {
                listed.insert(key.to_vec());
                continue;
            }
            let what =
                "a folder listing entry names a message that is not in that folder".to_string();
            if repair {
                self.trees.folders.remove(&key)?;
                report.repaired.push(what);
            } else {
                report.problems.push(what);
            }
        }
        for key in expected.listing.difference(&listed) {
            let what = "a message is missing from its folder's listing".to_string();
            if repair {
                self.relist(key)?;
                report.repaired.push(what);
            } else {
                report.problems.push(what);
            }
        }
        self.check_counts(
            repair,
            &self.trees.folder_stats,
            &expected.folders,
            "folder",
            report,
        )?;
        self.check_counts(
            repair,
            &self.trees.usage,
            &expected.usage,
            "mailbox usage",
            report,
        )
    }

    /// Each delivery row counts the messages that name it; a row nobody
    /// names is removed (repair: set the count, or remove the row).
    fn check_deliveries(
        &self,
        repair: bool,
        expected: &BTreeMap<Vec<u8>, u64>,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        for entry in message_rows::delivery_counts(&self.trees.deliveries) {
            let (key, live) = entry?;
            let want = expected.get(&key).copied().unwrap_or(0);
            if live == want {
                continue;
            }
            let what =
                format!("a delivery record counts {live} message(s); {want} message(s) name it");
            if repair {
                message_rows::set_live(&self.trees.deliveries, &key, want)?;
                report.repaired.push(what);
            } else {
                report.problems.push(what);
            }
        }
        Ok(())
    }

    /// Puts back a listing entry (key from `folder_entry_key`; its value
    /// is empty, the key names the message).
    fn relist(&self, key: &[u8]) -> Result<(), StoreError> {
        self.trees.folders.insert(key, &[] as &[u8])?;
        Ok(())
    }

    fn check_counts(
        &self,
        repair: bool,
        tree: &sled::Tree,
        expected: &BTreeMap<Vec<u8>, (u64, u64)>,
        what: &str,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        let mut stored = BTreeMap::new();
        for entry in tree.iter() {
            let (k, v) = entry?;
            stored.insert(k.to_vec(), state::decode_stats(Some(&v)));
        }
        let keys: HashSet<&Vec<u8>> = stored.keys().chain(expected.keys()).collect();
        for key in keys {
            let have = stored.get(key).copied().unwrap_or((0, 0));
            let want = expected.get(key).copied().unwrap_or((0, 0));
            if have == want {
                continue;
            }
            let name = String::from_utf8_lossy(key).replace('\0', "/");
            let text =
                format!("{what} counts of {name} were {have:?}, the messages add up to {want:?}");
            if repair {
                tree.insert(key.as_slice(), &state::encode_stats(want.0, want.1))?;
                report.repaired.push(text);
            } else {
                report.problems.push(text);
            }
        }
        Ok(())
    }
}
