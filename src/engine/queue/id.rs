//! Queue ids: the name of a queued message in logs, replies and file names.
//!
//! Owns: the id format. An id is 22 characters of `[0-9a-z]`: 12 hex digits
//! of the arrival time in milliseconds, 4 hex digits of a per-process
//! counter, then 6 random base-32 characters.
//!
//! Invariants:
//! - Ids sort by arrival time (to the millisecond), are safe in URLs and file
//!   names, and are unique: the spool also creates files with `create_new`,
//!   so a collision fails loudly instead of overwriting.
//! - `QueueId::parse` accepts only that format, so a name read from disk can
//!   never hold a path separator.
//!
//! Reads untrusted input: file names in the spool (checked by `parse`).

use std::fmt;
use std::sync::atomic::{AtomicU16, Ordering};

use rand::Rng;

const LEN: usize = 22;
const BASE32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

static COUNTER: AtomicU16 = AtomicU16::new(0);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(String);

impl QueueId {
    /// A fresh id for a message arriving now.
    pub fn generate() -> QueueId {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            & 0xffff_ffff_ffff;
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut rng = rand::thread_rng();
        let random: String = (0..6)
            .map(|_| BASE32[rng.gen_range(0..BASE32.len())] as char)
            .collect();
        QueueId(format!("{millis:012x}{count:04x}{random}"))
    }

    /// Checks a string (e.g. a spool file name) against the id format.
    pub fn parse(text: &str) -> Option<QueueId> {
        let ok = text.len() == LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        ok.then(|| QueueId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_unique_and_sorted() {
        let ids: Vec<QueueId> = (0..200).map(|_| QueueId::generate()).collect();
        for id in &ids {
            assert_eq!(QueueId::parse(id.as_str()).as_ref(), Some(id));
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert!(ids[0].as_str()[..12] <= ids[199].as_str()[..12]);
    }

    #[test]
    fn parse_rejects_other_names() {
        for bad in [
            "",
            "../../etc/passwd",
            "0123456789abcdef01234Z",
            "0123456789abcdef012345a",
        ] {
            assert_eq!(QueueId::parse(bad), None, "{bad}");
        }
    }
}
