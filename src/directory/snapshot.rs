//! The read-only directory snapshot the engine reads, the way Postfix reads
//! its lookup tables.
//!
//! Owns: `directory.snapshot.json` in the data folder. The mailbox role
//! publishes it after every directory change (`publish`); the engine reloads
//! it when its modification time or size changes (`SnapshotWatcher`).
//!
//! Invariants:
//! - The file is replaced atomically: written to a temporary file, fsynced,
//!   renamed over the old one, and the folder fsynced. A reader sees the old
//!   snapshot or the new one, never half of one.
//! - The file is owner-only (0600): it holds password hashes for SMTP AUTH.
//! - A snapshot that cannot be read or parsed never replaces a good one in
//!   memory; the engine keeps serving from the last good snapshot.
//!
//! Reads untrusted input: addresses and passwords from SMTP sessions are
//! looked up here (never parsed beyond `address::normalize_address`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::address::{domain_of, normalize_address};
use super::password::{verify_nothing, verify_password};

/// What the engine needs of the directory, and nothing more.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DirectorySnapshot {
    /// Domains whose mail is delivered here.
    pub domains: BTreeSet<String>,
    /// Mailbox owners by normalized address.
    pub users: BTreeMap<String, SnapshotUser>,
    /// Alias address to the local addresses it delivers to.
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Users whose mail is forwarded (their own setting), by address.
    #[serde(default)]
    pub forwards: BTreeMap<String, SnapshotForward>,
}

/// Where a user's mail is forwarded (`directory::settings::Forward`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotForward {
    pub to: String,
    pub keep_copy: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotUser {
    pub password_hash: String,
    pub enabled: bool,
}

/// Where a recipient address goes, as far as the engine must know at RCPT time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientRoute {
    /// A local user or alias; delivered over LMTP to the mailbox role.
    Local,
    /// A local user whose account is disabled.
    Disabled,
    /// A local domain, but no such user or alias (RFC 5321 §3.3: 550).
    UnknownLocal,
    /// Not one of our domains: relaying, only for authenticated senders.
    Remote,
    /// Not a usable address at all.
    Invalid,
}

/// Outcome of checking a login; data, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Logged in; holds the normalized address.
    Accepted(String),
    BadCredentials,
    Disabled,
}

impl DirectorySnapshot {
    pub fn route(&self, address: &str) -> RecipientRoute {
        let Some(address) = normalize_address(address) else {
            return RecipientRoute::Invalid;
        };
        if !self.domains.contains(domain_of(&address)) {
            return RecipientRoute::Remote;
        }
        if let Some(user) = self.users.get(&address) {
            return if user.enabled {
                RecipientRoute::Local
            } else {
                RecipientRoute::Disabled
            };
        }
        if self.aliases.contains_key(&address) {
            return RecipientRoute::Local;
        }
        RecipientRoute::UnknownLocal
    }

    /// May the user logged in as `login` use `sender` as envelope sender?
    /// Their own address, or an alias that delivers to them.
    pub fn may_send_as(&self, login: &str, sender: &str) -> bool {
        let (Some(login), Some(sender)) = (normalize_address(login), normalize_address(sender))
        else {
            return false;
        };
        sender == login
            || self
                .aliases
                .get(&sender)
                .is_some_and(|targets| targets.contains(&login))
    }

    /// Checks a login name (the full address) and password.
    pub fn authenticate(&self, login: &str, password: &str) -> AuthOutcome {
        let user = normalize_address(login).and_then(|a| Some((self.users.get(&a)?, a)));
        let Some((user, address)) = user else {
            verify_nothing(password);
            return AuthOutcome::BadCredentials;
        };
        if !verify_password(password, &user.password_hash) {
            AuthOutcome::BadCredentials
        } else if user.enabled {
            AuthOutcome::Accepted(address)
        } else {
            AuthOutcome::Disabled
        }
    }

    /// The envelope recipients a message for `recipients` really goes to,
    /// once users' forwarding is applied (like an alias, RFC 5321 §3.9.1:
    /// the reverse path stays the same). A forward to a local user who
    /// forwards too is followed; a forward back to an address already on
    /// the way ends the chain there, in that address's own mailbox, so a
    /// loop of forwards delivers once and never circles. An alias with a
    /// forwarding user among its targets is replaced by its targets, each
    /// expanded. Duplicates are dropped; order is kept.
    pub fn expand_forwards(&self, recipients: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for r in recipients {
            self.expand_one(r, &mut seen, &mut out, 0);
        }
        let mut unique = BTreeSet::new();
        out.retain(|r| unique.insert(normalize_address(r).unwrap_or_else(|| r.clone())));
        out
    }

    fn expand_one(
        &self,
        recipient: &str,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        /// Longer chains than this are delivered where they stand.
        const MAX_DEPTH: usize = 16;
        let Some(address) = normalize_address(recipient) else {
            out.push(recipient.to_string());
            return;
        };
        let first_visit = seen.insert(address.clone());
        if !first_visit || depth >= MAX_DEPTH {
            out.push(address);
            return;
        }
        if let Some(forward) = self.forwards.get(&address) {
            if forward.keep_copy {
                out.push(address.clone());
            }
            self.expand_one(&forward.to, seen, out, depth + 1);
            return;
        }
        match self.aliases.get(&address) {
            Some(targets) if targets.iter().any(|t| self.forwards.contains_key(t)) => {
                for t in targets {
                    self.expand_one(t, seen, out, depth + 1);
                }
            }
            // Not local (kept as given: a remote local part may be
            // case-sensitive, RFC 5321 §2.4), or local without forwarding.
            _ if self.domains.contains(domain_of(&address)) => out.push(address),
            _ => out.push(recipient.to_string()),
        }
    }

    /// Writes the snapshot to `path` atomically (see the module invariants).
    pub fn publish(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        // The rename is durable once the folder entry is on disk.
        std::fs::File::open(dir)?.sync_all()
    }

    pub fn read(path: &Path) -> std::io::Result<DirectorySnapshot> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

/// The engine's view of the snapshot file, reloaded when the file changes.
pub struct SnapshotWatcher {
    path: PathBuf,
    state: Mutex<WatchState>,
}

struct WatchState {
    stamp: Option<(SystemTime, u64)>,
    snapshot: Arc<DirectorySnapshot>,
}

impl SnapshotWatcher {
    /// Starts watching `path`. A missing file reads as an empty directory
    /// (every local recipient unknown) until the mailbox role publishes one.
    pub fn new(path: PathBuf) -> SnapshotWatcher {
        let watcher = SnapshotWatcher {
            path,
            state: Mutex::new(WatchState {
                stamp: None,
                snapshot: Arc::new(DirectorySnapshot::default()),
            }),
        };
        watcher.current();
        watcher
    }

    /// The newest good snapshot; re-reads the file if it changed since last time.
    pub fn current(&self) -> Arc<DirectorySnapshot> {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if stamp.is_some() && stamp != state.stamp {
            match DirectorySnapshot::read(&self.path) {
                Ok(snapshot) => {
                    state.snapshot = Arc::new(snapshot);
                    state.stamp = stamp;
                    tracing::info!(path = %self.path.display(), "directory snapshot loaded");
                }
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "directory snapshot unreadable; keeping the previous one");
                }
            }
        }
        state.snapshot.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::password::hash_password;

    fn sample() -> DirectorySnapshot {
        let mut s = DirectorySnapshot::default();
        s.domains.insert("campus.test".into());
        s.users.insert(
            "alice@campus.test".into(),
            SnapshotUser {
                password_hash: hash_password("alice-password").unwrap(),
                enabled: true,
            },
        );
        s.users.insert(
            "old@campus.test".into(),
            SnapshotUser {
                password_hash: hash_password("old-password").unwrap(),
                enabled: false,
            },
        );
        s.aliases
            .insert("info@campus.test".into(), vec!["alice@campus.test".into()]);
        s
    }

    #[test]
    fn routes_recipients() {
        let s = sample();
        assert_eq!(s.route("Alice@Campus.Test"), RecipientRoute::Local);
        assert_eq!(s.route("info@campus.test"), RecipientRoute::Local);
        assert_eq!(s.route("old@campus.test"), RecipientRoute::Disabled);
        assert_eq!(s.route("nobody@campus.test"), RecipientRoute::UnknownLocal);
        assert_eq!(s.route("x@example.org"), RecipientRoute::Remote);
        assert_eq!(s.route("not an address"), RecipientRoute::Invalid);
    }

    fn forward(s: &mut DirectorySnapshot, from: &str, to: &str, keep_copy: bool) {
        s.forwards.insert(
            from.into(),
            SnapshotForward {
                to: to.into(),
                keep_copy,
            },
        );
    }

    #[test]
    fn forwards_expand_like_aliases_and_loops_end_in_a_mailbox() {
        let mut s = sample();
        for u in ["bob", "carol"] {
            s.users.insert(
                format!("{u}@campus.test"),
                SnapshotUser {
                    password_hash: String::new(),
                    enabled: true,
                },
            );
        }
        let list = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s.expand_forwards(&list(&["alice@campus.test", "Far@Remote.test"])),
            list(&["alice@campus.test", "Far@Remote.test"])
        );
        forward(&mut s, "alice@campus.test", "bob@campus.test", false);
        assert_eq!(
            s.expand_forwards(&list(&["Alice@campus.test"])),
            list(&["bob@campus.test"])
        );
        forward(&mut s, "alice@campus.test", "bob@campus.test", true);
        assert_eq!(
            s.expand_forwards(&list(&["alice@campus.test", "bob@campus.test"])),
            list(&["alice@campus.test", "bob@campus.test"])
        );
        // The alias info@ delivers to alice, who forwards with a copy.
        assert_eq!(
            s.expand_forwards(&list(&["info@campus.test"])),
            list(&["alice@campus.test", "bob@campus.test"])
        );
        // alice -> bob -> carol -> alice (no copies): one delivery, to alice.
        forward(&mut s, "alice@campus.test", "bob@campus.test", false);
        forward(&mut s, "bob@campus.test", "carol@campus.test", false);
        forward(&mut s, "carol@campus.test", "alice@campus.test", false);
        assert_eq!(
            s.expand_forwards(&list(&["alice@campus.test"])),
            list(&["alice@campus.test"])
        );
        forward(&mut s, "carol@campus.test", "x@remote.test", false);
        assert_eq!(
            s.expand_forwards(&list(&["alice@campus.test"])),
            list(&["x@remote.test"])
        );
    }

    #[test]
    fn users_send_as_themselves_or_their_aliases() {
        let s = sample();
        assert!(s.may_send_as("alice@campus.test", "Alice@Campus.test"));
        assert!(s.may_send_as("alice@campus.test", "info@campus.test"));
        assert!(!s.may_send_as("alice@campus.test", "old@campus.test"));
        assert!(!s.may_send_as("alice@campus.test", "president@campus.test"));
        assert!(!s.may_send_as("alice@campus.test", ""));
    }

    #[test]
    fn authenticates() {
        let s = sample();
        assert_eq!(
            s.authenticate("alice@campus.test", "alice-password"),
            AuthOutcome::Accepted("alice@campus.test".into())
        );
        assert_eq!(
            s.authenticate("alice@campus.test", "nope"),
            AuthOutcome::BadCredentials
        );
        assert_eq!(
            s.authenticate("old@campus.test", "old-password"),
            AuthOutcome::Disabled
        );
        assert_eq!(
            s.authenticate("ghost@campus.test", "x"),
            AuthOutcome::BadCredentials
        );
    }

    #[test]
    fn publish_then_watch_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.snapshot.json");
        let watcher = SnapshotWatcher::new(path.clone());
        assert!(watcher.current().domains.is_empty());
        let s = sample();
        s.publish(&path).unwrap();
        assert_eq!(*watcher.current(), s);
        std::fs::write(&path, b"{ broken").unwrap();
        assert_eq!(
            *watcher.current(),
            s,
            "a broken file keeps the last good snapshot"
        );
    }
}
