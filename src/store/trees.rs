//! The sled trees of the store's metadata, opened once: every op is
//! applied to them in one transaction (`state::apply`), and readers use
//! them directly (`search_postings` is the exception: only the search
//! indexer writes it, outside any op's transaction). Adding a tree means adding it here, to `Tx`, and to the
//! transaction's list in `state::apply_with`.

use super::hlc::HlcTimestamp;
use super::state::{decode, HLC_HIGH};
use super::StoreError;

/// The sled trees ops are applied to.
#[derive(Clone)]
pub struct Trees {
    pub oplog: sled::Tree,
    pub messages: sled::Tree,
    pub deliveries: sled::Tree,
    pub folders: sled::Tree,
    pub flags: sled::Tree,
    pub folder_stats: sled::Tree,
    pub meta: sled::Tree,
    pub tombstones: sled::Tree,
    pub usage: sled::Tree,
    pub records: sled::Tree,
    pub blobs: sled::Tree,
    pub segments: sled::Tree,
    pub folder_defs: sled::Tree,
    pub orphans: sled::Tree,
    pub sort_index: sled::Tree,
    pub sorted_folders: sled::Tree,
    pub threads: sled::Tree,
    pub thread_heads: sled::Tree,
    pub thread_members: sled::Tree,
    pub thread_tips: sled::Tree,
    pub queue_refs: sled::Tree,
    pub search_postings: sled::Tree,
    pub search_pending: sled::Tree,
    pub search_docs: sled::Tree,
    pub search_shared: sled::Tree,
}

impl Trees {
    pub fn open(
        db: &sled::Db,
        blobs: sled::Tree,
        segments: sled::Tree,
    ) -> Result<Trees, StoreError> {
        Ok(Trees {
            oplog: db.open_tree("oplog")?,
            messages: db.open_tree("messages")?,
            deliveries: db.open_tree("deliveries")?,
            folders: db.open_tree("folders")?,
            flags: db.open_tree("flags")?,
            folder_stats: db.open_tree("folder_stats")?,
            meta: db.open_tree("meta")?,
            tombstones: db.open_tree("tombstones")?,
            usage: db.open_tree("usage")?,
            records: db.open_tree("records")?,
            blobs,
            segments,
            folder_defs: db.open_tree("folder_defs")?,
            orphans: db.open_tree("orphans")?,
            sort_index: db.open_tree("sort_index")?,
            sorted_folders: db.open_tree("sorted_folders")?,
            threads: db.open_tree("threads")?,
            thread_heads: db.open_tree("thread_heads")?,
            thread_members: db.open_tree("thread_members")?,
            thread_tips: db.open_tree("thread_tips")?,
            queue_refs: db.open_tree("queue_refs")?,
            search_postings: db.open_tree("search_postings")?,
            search_pending: db.open_tree("search_pending")?,
            search_docs: db.open_tree("search_docs")?,
            search_shared: db.open_tree("search_shared")?,
        })
    }

    /// Highest HLC timestamp ever applied here.
    pub fn hlc_high(&self) -> Result<HlcTimestamp, StoreError> {
        match self.meta.get(HLC_HIGH)? {
            Some(v) => decode(&v),
            None => Ok(HlcTimestamp::default()),
        }
    }
}
