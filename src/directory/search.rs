//! Finding users for the console: by address or display name, in a
//! directory of 30,000 or more.
//!
//! Owns nothing; reads the `users` tree.
//!
//! How it stays quick:
//! - An empty query is a count sled keeps (`len`) and a range scan of the
//!   first `limit` records: O(limit), whatever the directory's size.
//! - A query is matched against each record's raw text first (address
//!   key, then the JSON value, ASCII case folded);
//!   only records containing the text are decoded and checked field by
//!   field (the raw value also holds the password hash, so a raw hit is a
//!   candidate, not a match). Cost: one pass over about 150 bytes per
//!   user, decoding only the hits.
//!
//! Reads untrusted input: the search text of a signed-in admin (bounded by
//! the caller), compared only as a substring.

use super::{Directory, DirectoryError, UserRecord};

impl Directory {
    /// Users whose address or display name contains `query`
    /// (case-insensitive; every user when empty), in address order: at
    /// most `limit` records, and how many matched in all.
    pub fn search_users(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<(Vec<UserRecord>, usize), DirectoryError> {
        let lowered = query.trim().to_lowercase();
        if lowered.is_empty() {
            let mut found = Vec::new();
            for item in self.users.iter().take(limit) {
                found.push(serde_json::from_slice(&item?.1)?);
            }
            return Ok((found, self.users.len()));
        }
        let needle = lowered.as_str();
        let mut found = Vec::new();
        let mut matched = 0;
        for item in self.users.iter() {
            let (key, value) = item?;
            let by_address = contains_folded(&key, needle);
            if !by_address && !contains_folded(&value, needle) {
                continue;
            }
            let record: UserRecord = serde_json::from_slice(&value)?;
            let by_name = || {
                record
                    .display_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(lowered.as_str()))
            };
            if !by_address && !by_name() {
                continue;
            }
            matched += 1;
            if found.len() < limit {
                found.push(record);
            }
        }
        Ok((found, matched))
    }
}

/// True when `haystack` holds `needle` (already lower case), comparing
/// ASCII letters without case. Non-ASCII text compares exactly, so a
/// Korean name matches itself. (std's substring search does the work.)
fn contains_folded(haystack: &[u8], needle: &str) -> bool {
    match std::str::from_utf8(haystack) {
        Ok(text) => text.to_ascii_lowercase().contains(needle),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::import::{ImportRequest, ImportRow};

    #[test]
    fn folded_matching() {
        assert!(contains_folded(b"Kim.Minji@Campus.test", "minji@campus"));
        assert!(!contains_folded(b"kim", "kimm"));
        assert!(contains_folded("홍길동".as_bytes(), "길동"));
    }

    /// 30,000 imported users (the size the issue names): the empty query
    /// counts all and returns one page; a query finds exactly its matches,
    /// by address or display name, and a password hash never matches.
    #[test]
    fn search_over_thirty_thousand_users() {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("db"), &dir.path().join("snap.json")).unwrap();
        d.add_domain("campus.test").unwrap();
        let rows: Vec<ImportRow> = (0..30_000)
            .map(|i| ImportRow {
                line: i + 2,
                address: format!("s{i:05}@campus.test"),
                class: Some("student".into()),
                password: None,
                display_name: Some(if i == 12_345 {
                    "홍길동".to_string()
                } else {
                    format!("Student {i}")
                }),
                leave_date: None,
                state: None,
            })
            .collect();
        let request = ImportRequest {
            rows,
            skip_existing: false,
        };
        d.import_users(&request.rows, false).unwrap();
        let (page, count) = d.search_users("", 200).unwrap();
        assert_eq!((page.len(), count), (200, 30_000));
        assert_eq!(page[0].address, "s00000@campus.test");
        // The expected matches, counted the slow way.
        let expected = (0..30_000)
            .filter(|i| {
                format!("s{i:05}@campus.test").contains("1234")
                    || format!("student {i}").contains("1234")
            })
            .count();
        let started = std::time::Instant::now();
        let (found, count) = d.search_users("1234", 5).unwrap();
        eprintln!("one search over 30,000 users took {:?}", started.elapsed());
        assert_eq!(count, expected);
        assert_eq!(found.len(), 5);
        let (found, count) = d.search_users("길동", 10).unwrap();
        assert_eq!(count, 1);
        assert_eq!(found[0].address, "s12345@campus.test");
        assert_eq!(d.search_users("S29999@", 10).unwrap().1, 1);
        // "argon" is in no address or name (and no hash here either).
        assert_eq!(d.search_users("argon", 10).unwrap().1, 0);
    }
}
