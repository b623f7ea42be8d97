//! The console's audit log: one JSON line per admin action (who, when, from
//! where, what, on what, with which outcome), searchable from the console.
//!
//! Owns: `<data_dir>/audit/`, an owner-only folder holding one owner-only
//! file per UTC day, `audit-YYYY-MM-DD.log`; the daily name is the rotation.
//!
//! Retention: files older than `[logs] keep_days` (default 400) are
//! deleted by `ops::retention`, started with the web stack.
//!
//! Invariants:
//! - A line is appended whole and fsynced before `record` returns; a line
//!   is durable once `sync_data` succeeds. Lines are never rewritten.
//! - Writers are serialized by one mutex, so lines never interleave.
//! - Every field is JSON-escaped by serde; a line never holds a newline,
//!   so a crafted target cannot forge a second entry.
//! - Passwords are never written here.
//!
//! Reads untrusted input: the search text (only compared as a substring) and
//! the log files themselves (a damaged line is skipped, never a panic).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Most entries a search returns.
pub const SEARCH_LIMIT: usize = 200;
/// Most entries one CSV export holds (more than a year of a busy office).
pub const EXPORT_LIMIT: usize = 200_000;

/// One admin action, as written on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// RFC 3339 time in UTC, to the second ("2026-11-25T00:18:42Z").
    pub time: String,
    /// The admin account ("admin"), or the name tried at a failed login.
    pub admin: String,
    pub ip: String,
    /// What was done: `login`, `logout`, `user_create`, `user_disable`.
    pub action: String,
    /// On what (a user's address), empty when there is no target.
    pub target: String,
    /// `ok`, or a short reason code (`wrong_password`, `unknown_domain`...).
    pub outcome: String,
}

impl AuditEntry {
    /// An entry stamped with the time `now` (unix seconds).
    pub fn new(
        now: i64,
        admin: &str,
        ip: IpAddr,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> AuditEntry {
        AuditEntry {
            time: rfc3339(now),
            admin: admin.to_string(),
            ip: ip.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot write the audit log in {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the audit log in {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode an audit entry: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The audit log of this node.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    write: Mutex<()>,
}

/// What a search found: the newest matching entries first.
#[derive(Debug, Default)]
pub struct AuditSearch {
    pub entries: Vec<AuditEntry>,
    /// True when more lines matched than `SEARCH_LIMIT`.
    pub more: bool,
}

impl AuditLog {
    /// The log in `dir` (created on the first write).
    pub fn new(dir: PathBuf) -> AuditLog {
        AuditLog {
            dir,
            write: Mutex::new(()),
        }
    }

    /// `<data_dir>/audit`.
    pub fn in_data_dir(data_dir: &Path) -> AuditLog {
        AuditLog::new(data_dir.join("audit"))
    }

    /// Appends `entry` to the file of its day and fsyncs it.
    pub fn record(&self, entry: &AuditEntry) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let path = self.dir.join(file_name(&entry.time));
        let fail = |source| AuditError::Write {
            path: path.clone(),
            source,
        };
        let _serial = self.write.lock().unwrap_or_else(|p| p.into_inner());
        create_private_dir(&self.dir).map_err(fail)?;
        let mut file = open_append(&path).map_err(fail)?;
        file.write_all(&line).map_err(fail)?;
        // Durable from here: the line's bytes are on disk.
        file.sync_data().map_err(fail)
    }

    /// The newest `SEARCH_LIMIT` entries whose line contains `query`
    /// (case-insensitive); every entry when `query` is empty.
    pub fn search(&self, query: &str) -> Result<AuditSearch, AuditError> {
        self.search_up_to(query, SEARCH_LIMIT)
    }

    /// `search` with another limit (the CSV export).
    pub fn search_up_to(&self, query: &str, limit: usize) -> Result<AuditSearch, AuditError> {
        let needle = query.trim().to_lowercase();
        let mut files = match fs::read_dir(&self.dir) {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| is_log_name(name))
                .collect::<Vec<_>>(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(AuditError::Read {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        // Day names sort by date; newest day first.
        files.sort_unstable_by(|a, b| b.cmp(a));
        let mut found = AuditSearch::default();
        for name in files {
            let path = self.dir.join(&name);
            let file = File::open(&path).map_err(|source| AuditError::Read {
                path: path.clone(),
                source,
            })?;
            let mut day = Vec::new();
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else {
                    continue;
                };
                if needle.is_empty() || line.to_lowercase().contains(&needle) {
                    if let Ok(entry) = serde_json::from_str::<AuditEntry>(&line) {
                        day.push(entry);
                    }
                }
            }
            for entry in day.into_iter().rev() {
                if found.entries.len() == limit {
                    found.more = true;
                    return Ok(found);
                }
                found.entries.push(entry);
            }
        }
        Ok(found)
    }
}

/// "audit-YYYY-MM-DD.log" for an RFC 3339 time (its first ten characters).
fn file_name(time: &str) -> String {
    let day = time.get(..10).unwrap_or("0000-00-00");
    format!("audit-{day}.log")
}

fn is_log_name(name: &str) -> bool {
    name.len() == "audit-YYYY-MM-DD.log".len()
        && name.starts_with("audit-")
        && name.ends_with(".log")
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 60 * 60;
    /// 2026-11-25T00:00:00Z.
    const T0: i64 = 1_795_564_800;

    fn ip() -> IpAddr {
        IpAddr::from([192, 0, 2, 7])
    }

    #[test]
    fn one_json_line_per_action_in_a_daily_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::in_data_dir(dir.path());
        let entry = AuditEntry::new(
            T0 + 61,
            "admin",
            ip(),
            "user_create",
            "hong@example.ac.kr",
            "ok",
        );
        log.record(&entry).unwrap();
        log.record(&AuditEntry::new(T0 + 62, "admin", ip(), "logout", "", "ok"))
            .unwrap();
        let path = dir.path().join("audit/audit-2026-11-25.log");
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"time":"2026-11-25T00:01:01Z","admin":"admin","ip":"192.0.2.7","action":"user_create","target":"hong@example.ac.kr","outcome":"ok"}"#
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(dir.path().join("audit"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        log.record(&AuditEntry::new(T0 + DAY, "admin", ip(), "login", "", "ok"))
            .unwrap();
        assert!(dir.path().join("audit/audit-2026-11-26.log").exists());
    }

    #[test]
    fn a_crafted_target_cannot_forge_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().to_path_buf());
        let evil = "x\n{\"time\":\"2000-01-01T00:00:00Z\",\"action\":\"forged\"}";
        log.record(&AuditEntry::new(
            T0,
            "admin",
            ip(),
            "user_create",
            evil,
            "bad_address",
        ))
        .unwrap();
        let text = fs::read_to_string(dir.path().join("audit-2026-11-25.log")).unwrap();
        assert_eq!(text.lines().count(), 1);
        let found = log.search("").unwrap();
        assert_eq!(found.entries.len(), 1);
        assert_eq!(found.entries[0].target, evil);
    }

    #[test]
    fn search_is_newest_first_substring_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().to_path_buf());
        assert!(log.search("").unwrap().entries.is_empty(), "no folder yet");
        for i in 0..(SEARCH_LIMIT as i64 + 10) {
            let target = format!("user{i}@example.ac.kr");
            // Spread over three days, oldest first.
            let at = T0 + (i / 100) * DAY + i;
            log.record(&AuditEntry::new(
                at,
                "admin",
                ip(),
                "user_create",
                &target,
                "ok",
            ))
            .unwrap();
        }
        log.record(&AuditEntry::new(
            T0 + 5,
            "admin",
            ip(),
            "login",
            "",
            "wrong_password",
        ))
        .unwrap();
        fs::write(dir.path().join("audit-2026-11-24.log"), "not json\n").unwrap();
        fs::write(dir.path().join("notes.txt"), "user1@example.ac.kr\n").unwrap();

        let all = log.search("").unwrap();
        assert_eq!(all.entries.len(), SEARCH_LIMIT);
        assert!(all.more);
        assert_eq!(all.entries[0].target, "user209@example.ac.kr");

        let hits = log.search("USER1@").unwrap();
        assert_eq!(hits.entries.len(), 1);
        assert!(!hits.more);
        let failures = log.search("wrong_password").unwrap();
        assert_eq!(failures.entries.len(), 1);
        assert_eq!(failures.entries[0].action, "login");
        let twelve: Vec<_> = log
            .search("user12")
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(twelve[0], "user129@example.ac.kr");
        assert_eq!(
            twelve.last().map(String::as_str),
            Some("user12@example.ac.kr")
        );
    }
}
