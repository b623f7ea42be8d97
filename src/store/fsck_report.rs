//! What `campusmail store fsck` reports ([`FsckReport`], as people read
//! it and as JSON) and the outcome of the last run kept in `meta` for the
//! console's storage page ([`LastFsck`]). The checks are `fsck.rs`.

use std::fmt;

use serde::Serialize;

use super::state;
use super::{Store, StoreError};

#[derive(Clone, Debug, Default, Serialize)]
pub struct FsckReport {
    pub segments: usize,
    pub blobs: usize,
    pub messages: usize,
    /// Blobs indexed with no message using them (left by an interrupted
    /// delivery; reclaimed at the next start or by repair).
    pub unreferenced: usize,
    /// What is wrong, in plain words.
    pub problems: Vec<String>,
    /// What repair changed.
    pub repaired: Vec<String>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for FsckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked {} segment(s), {} blob(s) (every hash), {} message(s)",
            self.segments, self.blobs, self.messages
        )?;
        if self.unreferenced > 0 {
            writeln!(
                f,
                "{} blob(s) are stored but used by no message (an interrupted delivery); \
                 they are reclaimed at the next start",
                self.unreferenced
            )?;
        }
        for p in &self.problems {
            writeln!(f, "PROBLEM: {p}")?;
        }
        for r in &self.repaired {
            writeln!(f, "repaired: {r}")?;
        }
        if self.problems.is_empty() {
            writeln!(f, "the store is consistent")?;
        } else if self.repaired.is_empty() {
            writeln!(
                f,
                "{} problem(s) found; run `campusmail store fsck --repair` to fix what can be fixed",
                self.problems.len()
            )?;
        }
        Ok(())
    }
}

/// `meta` key of the last fsck's outcome.
const LAST_FSCK: &[u8] = b"last_fsck";

/// The outcome of the last fsck run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LastFsck {
    /// Unix seconds when it finished.
    pub at: i64,
    pub messages: u64,
    /// Problems found (those repaired included, when it repaired).
    pub problems: u64,
    pub repaired: u64,
}

impl Store {
    /// Remembers when fsck last ran and what it found (the console's
    /// storage page shows it).
    pub(super) fn record_fsck(&self, report: &FsckReport) -> Result<(), StoreError> {
        let last = LastFsck {
            at: chrono::Utc::now().timestamp(),
            messages: report.messages as u64,
            problems: report.problems.len() as u64,
            repaired: report.repaired.len() as u64,
        };
        self.trees.meta.insert(LAST_FSCK, state::encode(&last)?)?;
        Ok(())
    }

    /// When fsck last ran here and what it found; None if it never ran.
    pub fn last_fsck(&self) -> Result<Option<LastFsck>, StoreError> {
        self.trees
            .meta
            .get(LAST_FSCK)?
            .map(|v| state::decode(&v))
            .transpose()
    }
}
