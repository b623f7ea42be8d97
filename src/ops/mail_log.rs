//! The mail log (O3): one JSON line per recipient per delivery attempt
//! (time, queue id, sender, recipient, status, relay, reply), written by
//! the engine, one file per UTC day, searchable from the console.
//!
//! Owns: `<data_dir>/logs/` (owner-only) with `mail-YYYY-MM-DD.log` files;
//! the daily name is the rotation, `retention` the deletion.
//!
//! Invariants:
//! - A batch of lines (one attempt's chunk) is appended with one write
//!   under a mutex, so lines never interleave. Lines are not fsynced: the
//!   spool's outcome log is the durable record of a delivery; this log is
//!   for people and may lose its last lines in a crash.
//! - Every field is JSON-escaped by serde, so a crafted address or reply
//!   cannot forge a line.
//!
//! Reads untrusted input: remote replies and addresses (stored escaped);
//! the search text (only compared); the files (damaged lines skipped).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The file name prefix (`mail-YYYY-MM-DD.log`).
pub const PREFIX: &str = "mail";
/// Most entries a search returns.
pub const SEARCH_LIMIT: usize = 500;
/// Longest reply text kept per line.
const MAX_REPLY: usize = 512;

/// One recipient's outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailLogEntry {
    /// RFC 3339 UTC, to the second.
    pub time: String,
    pub queue_id: String,
    /// The envelope sender; empty for `<>`.
    pub from: String,
    pub to: String,
    /// `delivered`, `deferred` or `bounced`.
    pub status: String,
    /// Where it went: `lmtp` (this appliance's mailboxes), the remote
    /// server, or empty when no server was reached.
    pub relay: String,
    /// The server's reply or our reason.
    pub reply: String,
}

impl MailLogEntry {
    pub fn new(
        now: i64,
        queue_id: &str,
        from: &str,
        to: &str,
        status: &str,
        relay: &str,
        reply: &str,
    ) -> MailLogEntry {
        MailLogEntry {
            time: rfc3339(now),
            queue_id: queue_id.into(),
            from: from.into(),
            to: to.into(),
            status: status.into(),
            relay: relay.into(),
            reply: reply.chars().take(MAX_REPLY).collect(),
        }
    }
}

/// What a search found, newest first.
#[derive(Debug, Default)]
pub struct MailLogSearch {
    pub entries: Vec<MailLogEntry>,
    pub more: bool,
}

#[derive(Debug)]
pub struct MailLog {
    dir: PathBuf,
    write: Mutex<()>,
}

impl MailLog {
    /// `<data_dir>/logs`.
    pub fn in_data_dir(data_dir: &Path) -> MailLog {
        MailLog {
            dir: data_dir.join("logs"),
            write: Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `entries` (all of one day's file: the first entry's day).
    pub fn append(&self, entries: &[MailLogEntry]) -> std::io::Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        for e in entries {
            bytes.extend(serde_json::to_vec(e).map_err(std::io::Error::other)?);
            bytes.push(b'\n');
        }
        let path = self.dir.join(file_name(&first.time));
        let _serial = self.write.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(&bytes)
    }

    /// The newest `SEARCH_LIMIT` entries whose line contains `query` (any
    /// case), from the day `day` ("YYYY-MM-DD") or every day.
    pub fn search(&self, query: &str, day: Option<&str>) -> std::io::Result<MailLogSearch> {
        let needle = query.trim().to_lowercase();
        let mut names = match std::fs::read_dir(&self.dir) {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| super::retention::day_of(n, PREFIX).is_some())
                .filter(|n| day.is_none_or(|d| *n == format!("{PREFIX}-{d}.log")))
                .collect::<Vec<_>>(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err),
        };
        names.sort_unstable_by(|a, b| b.cmp(a));
        let mut found = MailLogSearch::default();
        for name in names {
            let file = File::open(self.dir.join(&name))?;
            let mut day_entries = Vec::new();
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { continue };
                if needle.is_empty() || line.to_lowercase().contains(&needle) {
                    if let Ok(entry) = serde_json::from_str::<MailLogEntry>(&line) {
                        day_entries.push(entry);
                    }
                }
            }
            for entry in day_entries.into_iter().rev() {
                if found.entries.len() == SEARCH_LIMIT {
                    found.more = true;
                    return Ok(found);
                }
                found.entries.push(entry);
            }
        }
        Ok(found)
    }
}

fn file_name(time: &str) -> String {
    let day = time.get(..10).unwrap_or("0000-00-00");
    format!("{PREFIX}-{day}.log")
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25T00:00:00Z.
    const T0: i64 = 1_795_564_800;

    #[test]
    fn lines_per_day_searchable_and_unforgeable() {
        let dir = tempfile::tempdir().unwrap();
        let log = MailLog::in_data_dir(dir.path());
        let evil = "x@y\n{\"status\":\"forged\"}";
        log.append(&[
            MailLogEntry::new(
                T0,
                "q1",
                "a@x.test",
                "b@campus.test",
                "delivered",
                "lmtp",
                "250 ok",
            ),
            MailLogEntry::new(T0 + 1, "q1", "a@x.test", evil, "bounced", "", "550 no"),
        ])
        .unwrap();
        log.append(&[MailLogEntry::new(
            T0 + 86_400,
            "q2",
            "",
            "c@remote.test",
            "deferred",
            "mx.remote.test",
            "421 later",
        )])
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("logs/mail-2026-11-25.log")).unwrap();
        assert_eq!(text.lines().count(), 2);
        let all = log.search("", None).unwrap();
        assert_eq!(all.entries.len(), 3);
        assert_eq!(all.entries[0].queue_id, "q2", "newest first");
        assert_eq!(all.entries[1].to, evil);
        assert_eq!(log.search("B@CAMPUS", None).unwrap().entries.len(), 1);
        assert_eq!(log.search("", Some("2026-11-26")).unwrap().entries.len(), 1);
        assert!(log.search("", Some("../x")).unwrap().entries.is_empty());
    }
}
