//! The directory: domains, users, aliases and the appliance's admin account.
//!
//! Owns: the mailbox role's sled database `directory.db` and, through
//! `snapshot`, the read-only `directory.snapshot.json` the engine reads.
//!
//! Invariants:
//! - Only the mailbox role (or a management command while it is stopped)
//!   opens `directory.db`; sled is single-process.
//! - After every change the snapshot is published again before the change is
//!   reported as done, so the engine never lags behind a confirmed command.
//! - Addresses are stored normalized (`address::normalize_address`).
//! - Deleting a user (`user_admin`) removes only the directory record; the
//!   mailbox role empties the mailbox first (`mailbox::mailbox_removal`).
//!
//! Reads untrusted input: login names and passwords from web and SMTP.
//!
//! Every tree listed in `replicated::TREES` travels to the peer through the
//! store's op log (`mailbox::directory_sync`).

pub mod address;
pub mod appliance_settings;
pub mod classes;
pub mod commands;
pub mod contacts;
mod csv;
pub mod export;
pub mod groups;
pub mod import;
pub mod import_problem;
pub mod lifecycle;
pub mod password;
pub mod refusal;
pub mod replicated;
mod search;
pub mod settings;
pub mod snapshot;
pub mod user_admin;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use address::{domain_of, normalize_address};
use snapshot::{AuthOutcome, DirectorySnapshot, SnapshotForward, SnapshotUser};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("the directory database at {path} is in use by a running campusmail; stop it or let the command go through its control socket ({source})")]
    Locked { path: PathBuf, source: sled::Error },
    #[error("directory database error: {0}")]
    Db(#[from] sled::Error),
    #[error("directory record is damaged: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("cannot publish the directory snapshot: {0}")]
    Publish(std::io::Error),
    #[error("{0:?} is not a valid mail address (expected name@domain)")]
    BadAddress(String),
    #[error("{0:?} is not a valid domain name")]
    BadDomain(String),
    #[error("the domain {0} is not served here; add it first with `campusmail domain add {0}`")]
    UnknownDomain(String),
    #[error("the domain {0} already exists")]
    DomainExists(String),
    #[error("{0} already exists")]
    AddressTaken(String),
    #[error("no user {0}")]
    NoSuchUser(String),
    #[error("alias target {0} is not a local user")]
    BadAliasTarget(String),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("{0}")]
    BadValue(String),
    #[error(transparent)]
    Refused(#[from] refusal::Refusal),
    #[error("{0}")]
    ImportRefused(import::ImportProblems),
    #[error("settings refused: {0}")]
    Settings(#[from] settings::SettingsProblem),
    #[error("settings refused: {0}")]
    Appliance(#[from] appliance_settings::ApplianceProblem),
    #[error("contact refused: {0}")]
    Contact(#[from] contacts::ContactProblem),
    #[error("the directory's write lock was poisoned by a panic; restart campusmail")]
    Poisoned,
}

/// One mailbox owner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRecord {
    pub address: String,
    pub password_hash: String,
    pub enabled: bool,
    /// User class (student, staff, ...): quotas and lifecycle come with R12.
    pub class: String,
    pub created_at: i64,
    /// The user's own mailbox limits; None = the configured default
    /// (`[mailbox] default_quota*`), Some(0) = no limit for this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_messages: Option<u64>,
    /// The person's name as the console and the export show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The day the person leaves (graduation, retirement), "YYYY-MM-DD":
    /// with the class's lifecycle rule it says when the account is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_date: Option<String>,
}

impl UserRecord {
    /// False for accounts imported without a password: no login works
    /// until an admin sets one.
    pub fn has_password(&self) -> bool {
        password::is_usable_hash(&self.password_hash)
    }
}

pub struct Directory {
    db: sled::Db,
    domains: sled::Tree,
    users: sled::Tree,
    aliases: sled::Tree,
    admins: sled::Tree,
    /// User classes (`classes.rs`): default quotas and lifecycle rules.
    classes: sled::Tree,
    /// Each user's own settings (`settings.rs`).
    settings: sled::Tree,
    /// When each user last auto-replied to each sender (`settings.rs`).
    vacation_replies: sled::Tree,
    /// The console's appliance settings (`appliance_settings.rs`).
    appliance: sled::Tree,
    /// Each user's address book (`contacts.rs`).
    contacts: sled::Tree,
    snapshot_path: PathBuf,
    /// Held by every "is the address free? then take it" change (user add,
    /// alias add, import), so two of them cannot both take one address.
    writes: Mutex<()>,
    /// Held while a snapshot is built and written: two publishers at once
    /// (a command and the pair's directory sync) would share the temp file,
    /// and the one reading the older state could rename last.
    publishing: Mutex<()>,
}

impl Directory {
    /// Opens (or creates) the directory database and publishes a fresh snapshot.
    pub fn open(db_path: &Path, snapshot_path: &Path) -> Result<Directory, DirectoryError> {
        let db = sled::Config::new()
            .path(db_path)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    DirectoryError::Locked {
                        path: db_path.to_path_buf(),
                        source: e,
                    }
                }
                sled::Error::Io(ref io) if io.to_string().contains("lock") => {
                    DirectoryError::Locked {
                        path: db_path.to_path_buf(),
                        source: e,
                    }
                }
                other => DirectoryError::Db(other),
            })?;
        let directory = Directory {
            domains: db.open_tree("domains")?,
            users: db.open_tree("users")?,
            aliases: db.open_tree("aliases")?,
            admins: db.open_tree("admins")?,
            classes: db.open_tree("classes")?,
            settings: db.open_tree("settings")?,
            vacation_replies: db.open_tree("vacation_replies")?,
            appliance: db.open_tree("appliance")?,
            contacts: db.open_tree("contacts")?,
            db,
            snapshot_path: snapshot_path.to_path_buf(),
            writes: Mutex::new(()),
            publishing: Mutex::new(()),
        };
        directory.publish()?;
        Ok(directory)
    }

    /// Writes the engine's snapshot from the current state.
    pub fn publish(&self) -> Result<(), DirectoryError> {
        let _one = self
            .publishing
            .lock()
            .map_err(|_| DirectoryError::Poisoned)?;
        let mut snap = DirectorySnapshot::default();
        for item in self.domains.iter() {
            let (k, _) = item?;
            snap.domains
                .insert(String::from_utf8_lossy(&k).into_owned());
        }
        for user in self.users()? {
            snap.users.insert(
                user.address.clone(),
                SnapshotUser {
                    password_hash: user.password_hash,
                    enabled: user.enabled,
                },
            );
        }
        for item in self.aliases.iter() {
            let (k, v) = item?;
            let targets: Vec<String> = serde_json::from_slice(&v)?;
            snap.aliases
                .insert(String::from_utf8_lossy(&k).into_owned(), targets);
        }
        // A disabled user's mail is refused, never forwarded.
        for (user, forward) in self.forwards()? {
            if snap.users.get(&user).is_some_and(|u| u.enabled) {
                snap.forwards.insert(
                    user,
                    SnapshotForward {
                        to: forward.to,
                        keep_copy: forward.keep_copy,
                    },
                );
            }
        }
        snap.publish(&self.snapshot_path)
            .map_err(DirectoryError::Publish)
    }

    fn commit(&self) -> Result<(), DirectoryError> {
        self.db.flush()?;
        self.publish()
    }

    pub fn add_domain(&self, domain: &str) -> Result<(), DirectoryError> {
        let domain = domain.trim().to_ascii_lowercase();
        if !address::is_valid_domain(&domain) {
            return Err(DirectoryError::BadDomain(domain));
        }
        if self.domains.contains_key(&domain)? {
            return Err(DirectoryError::DomainExists(domain));
        }
        self.domains.insert(domain.as_bytes(), b"{}".as_slice())?;
        self.commit()
    }

    pub fn domains(&self) -> Result<Vec<String>, DirectoryError> {
        self.domains
            .iter()
            .map(|r| Ok(String::from_utf8_lossy(&r?.0).into_owned()))
            .collect()
    }

    fn checked_address(&self, address: &str) -> Result<String, DirectoryError> {
        let address =
            normalize_address(address).ok_or_else(|| DirectoryError::BadAddress(address.into()))?;
        let domain = domain_of(&address);
        if !self.domains.contains_key(domain)? {
            return Err(DirectoryError::UnknownDomain(domain.to_string()));
        }
        Ok(address)
    }

    pub fn add_user(&self, address: &str, password: &str) -> Result<String, DirectoryError> {
        let address = self.checked_address(address)?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        if self.users.contains_key(&address)? || self.aliases.contains_key(&address)? {
            return Err(DirectoryError::AddressTaken(address));
        }
        let record = UserRecord {
            address: address.clone(),
            password_hash: password::hash_password(password)?,
            enabled: true,
            class: "default".into(),
            created_at: chrono::Utc::now().timestamp(),
            quota_bytes: None,
            quota_messages: None,
            display_name: None,
            leave_date: None,
        };
        self.users
            .insert(address.as_bytes(), serde_json::to_vec(&record)?)?;
        self.commit()?;
        Ok(address)
    }

    pub fn user(&self, address: &str) -> Result<Option<UserRecord>, DirectoryError> {
        let Some(address) = normalize_address(address) else {
            return Ok(None);
        };
        match self.users.get(address)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn users(&self) -> Result<Vec<UserRecord>, DirectoryError> {
        self.users
            .iter()
            .map(|r| Ok(serde_json::from_slice(&r?.1)?))
            .collect()
    }

    /// Number of users (enabled or not).
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub(crate) fn update_user(
        &self,
        address: &str,
        change: impl FnOnce(&mut UserRecord) -> Result<(), DirectoryError>,
    ) -> Result<(), DirectoryError> {
        let mut record = self
            .user(address)?
            .ok_or_else(|| DirectoryError::NoSuchUser(address.to_string()))?;
        change(&mut record)?;
        self.users
            .insert(record.address.as_bytes(), serde_json::to_vec(&record)?)?;
        self.commit()
    }

    pub fn set_password(&self, address: &str, password: &str) -> Result<(), DirectoryError> {
        let hash = password::hash_password(password)?;
        self.update_user(address, |u| {
            u.password_hash = hash;
            Ok(())
        })
    }

    /// Sets the user's own limits (`None` leaves that limit unchanged;
    /// `Some(None)` returns it to the default, `Some(Some(0))` = no limit).
    pub fn set_quota(
        &self,
        address: &str,
        bytes: Option<Option<u64>>,
        messages: Option<Option<u64>>,
    ) -> Result<UserRecord, DirectoryError> {
        self.update_user(address, |u| {
            if let Some(b) = bytes {
                u.quota_bytes = b;
            }
            if let Some(m) = messages {
                u.quota_messages = m;
            }
            Ok(())
        })?;
        self.user(address)?
            .ok_or_else(|| DirectoryError::NoSuchUser(address.to_string()))
    }

    pub fn set_enabled(&self, address: &str, enabled: bool) -> Result<(), DirectoryError> {
        self.update_user(address, |u| {
            u.enabled = enabled;
            Ok(())
        })
    }

    /// Adds an alias delivering to local users (remote targets come with routing, R13).
    pub fn add_alias(&self, alias: &str, targets: &[String]) -> Result<String, DirectoryError> {
        let alias = self.checked_address(alias)?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        if self.users.contains_key(&alias)? || self.aliases.contains_key(&alias)? {
            return Err(DirectoryError::AddressTaken(alias));
        }
        let mut resolved = Vec::new();
        for target in targets {
            match self.user(target)? {
                Some(user) => resolved.push(user.address),
                None => return Err(DirectoryError::BadAliasTarget(target.clone())),
            }
        }
        if resolved.is_empty() {
            return Err(DirectoryError::BadAliasTarget("(none given)".into()));
        }
        self.aliases
            .insert(alias.as_bytes(), serde_json::to_vec(&resolved)?)?;
        self.commit()?;
        Ok(alias)
    }

    pub fn aliases(&self) -> Result<Vec<(String, Vec<String>)>, DirectoryError> {
        self.aliases
            .iter()
            .map(|r| {
                let (k, v) = r?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    serde_json::from_slice(&v)?,
                ))
            })
            .collect()
    }

    /// The mailbox owners mail to `address` is stored for: the user itself,
    /// or an alias's targets. Empty when the address is not local.
    pub fn mailboxes_for(&self, address: &str) -> Result<Vec<String>, DirectoryError> {
        let Some(address) = normalize_address(address) else {
            return Ok(Vec::new());
        };
        if let Some(user) = self.user(&address)? {
            return Ok(if user.enabled {
                vec![user.address]
            } else {
                Vec::new()
            });
        }
        match self.aliases.get(&address)? {
            Some(v) => {
                let targets: Vec<String> = serde_json::from_slice(&v)?;
                let mut out = Vec::new();
                for t in targets {
                    if let Some(u) = self.user(&t)? {
                        if u.enabled {
                            out.push(u.address);
                        }
                    }
                }
                Ok(out)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Checks a login (the full address) and password.
    pub fn authenticate(&self, login: &str, password: &str) -> Result<AuthOutcome, DirectoryError> {
        let Some(user) = self.user(login)? else {
            // Spend the same work as a real check so timing does not tell
            // whether the account exists.
            password::verify_nothing(password);
            return Ok(AuthOutcome::BadCredentials);
        };
        if !password::verify_password(password, &user.password_hash) {
            return Ok(AuthOutcome::BadCredentials);
        }
        Ok(if user.enabled {
            AuthOutcome::Accepted(user.address)
        } else {
            AuthOutcome::Disabled
        })
    }

    /// Creates the console's `admin` account with a fresh random password when
    /// there is none yet; returns that password so it can be printed once.
    pub fn ensure_admin(&self) -> Result<Option<String>, DirectoryError> {
        if self.admins.contains_key("admin")? {
            return Ok(None);
        }
        let secret = random_password();
        let hash = password::hash_password(&secret)?;
        self.admins.insert("admin", hash.as_bytes())?;
        self.db.flush()?;
        Ok(Some(secret))
    }

    /// Checks the console admin's password.
    pub fn authenticate_admin(&self, name: &str, password: &str) -> Result<bool, DirectoryError> {
        Ok(match self.admins.get(name)? {
            Some(hash) => password::verify_password(password, &String::from_utf8_lossy(&hash)),
            None => {
                // Same work as a real check: timing does not tell which
                // admin names exist (the console audits every attempt).
                password::verify_nothing(password);
                false
            }
        })
    }
}

/// 20 characters from an alphabet without look-alikes (0/O, 1/l/I).
fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Directory) {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("db"), &dir.path().join("snap.json")).unwrap();
        (dir, d)
    }

    #[test]
    fn users_need_a_local_domain_and_are_published() {
        let (dir, d) = open();
        assert!(matches!(
            d.add_user("alice@campus.test", "alice-password"),
            Err(DirectoryError::UnknownDomain(_))
        ));
        d.add_domain("Campus.Test").unwrap();
        assert_eq!(
            d.add_user("Alice@campus.test", "alice-password").unwrap(),
            "alice@campus.test"
        );
        assert!(matches!(
            d.add_user("alice@campus.test", "alice-password"),
            Err(DirectoryError::AddressTaken(_))
        ));
        let snap = DirectorySnapshot::read(&dir.path().join("snap.json")).unwrap();
        assert!(snap.users.contains_key("alice@campus.test"));
        assert!(snap.domains.contains("campus.test"));
    }

    #[test]
    fn passwords_disable_and_aliases() {
        let (_dir, d) = open();
        d.add_domain("campus.test").unwrap();
        d.add_user("bob@campus.test", "bob-password").unwrap();
        assert_eq!(
            d.authenticate("bob@campus.test", "bob-password").unwrap(),
            AuthOutcome::Accepted("bob@campus.test".into())
        );
        d.set_password("bob@campus.test", "new-password").unwrap();
        assert_eq!(
            d.authenticate("bob@campus.test", "bob-password").unwrap(),
            AuthOutcome::BadCredentials
        );
        d.add_alias("office@campus.test", &["bob@campus.test".into()])
            .unwrap();
        assert_eq!(
            d.mailboxes_for("Office@campus.test").unwrap(),
            vec!["bob@campus.test"]
        );
        assert!(d
            .add_alias("x@campus.test", &["ghost@campus.test".into()])
            .is_err());
        d.set_enabled("bob@campus.test", false).unwrap();
        assert_eq!(
            d.authenticate("bob@campus.test", "new-password").unwrap(),
            AuthOutcome::Disabled
        );
        assert!(d.mailboxes_for("bob@campus.test").unwrap().is_empty());
        assert_eq!(
            d.authenticate("ghost@campus.test", "whatever").unwrap(),
            AuthOutcome::BadCredentials
        );
    }

    #[test]
    fn user_search_counts_all_matches_but_returns_at_most_the_limit() {
        let (_dir, d) = open();
        d.add_domain("campus.test").unwrap();
        for name in ["kim1", "kim2", "kim3", "lee"] {
            d.add_user(&format!("{name}@campus.test"), "long-password")
                .unwrap();
        }
        assert_eq!(d.user_count(), 4);
        let (users, matched) = d.search_users("KIM", 2).unwrap();
        assert_eq!(matched, 3);
        let names: Vec<_> = users.iter().map(|u| u.address.as_str()).collect();
        assert_eq!(names, ["kim1@campus.test", "kim2@campus.test"]);
        assert_eq!(d.search_users("", 10).unwrap().1, 4);
        assert_eq!(d.search_users("nobody", 10).unwrap(), (Vec::new(), 0));
    }

    #[test]
    fn admin_password_is_made_once() {
        let (_dir, d) = open();
        let pw = d.ensure_admin().unwrap().unwrap();
        assert!(d.authenticate_admin("admin", &pw).unwrap());
        assert!(d.ensure_admin().unwrap().is_none());
    }
}
