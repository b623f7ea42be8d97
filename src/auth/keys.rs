//! DKIM keys per domain, on disk: creation, rotation, retirement.
//!
//! Layout under the folder the caller gives (`<data_dir>/dkim`):
//! ```text
//! dkim/                          0700
//!   campus.example/              0700, one folder per domain (lower case)
//!     keys.json                  the key list: selector, algorithm, state,
//!                                creation time, public key (for DNS)
//!     cm20260115-rsa.pem         RSA-2048 private key, PKCS#1 PEM, 0600
//!     cm20260115-ed.pem          Ed25519 private key, PKCS#8 PEM, 0600
//! ```
//! Selectors are `cm<yyyymmdd>-rsa` and `cm<yyyymmdd>-ed` (UTC date of
//! creation); a second pair made the same day gets a letter: `cm20260115b-rsa`.
//! Each domain has one active pair (both sign every message, RFC 8463 §4) and
//! any number of retired pairs, which no longer sign but stay listed (and in
//! `campusmail dns records`) until the admin says their DNS records are gone,
//! so mail signed just before a rotation still verifies.
//!
//! Crash safety: every file is written to a temporary name, fsynced, renamed
//! into place, and the folder fsynced. Private key files are written first;
//! the rename of `keys.json` is the step that makes a new key (or a
//! retirement) real. A crash before it leaves at most an unused `.pem`, which
//! the next rotation overwrites or nobody reads.
//!
//! Writers: the CLI (`dkim rotate`, `dns records`) and a role at start; they
//! are not meant to run at the same moment (no lock is taken).
//!
//! Owns: the `dkim/` folder. Invariant: private keys are only ever written
//! owner-only (0600) in an owner-only folder.
//!
//! Reads untrusted input: no (files written by campusmail itself; damaged
//! ones give `AuthError::DamagedKey`, never a panic).

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use mail_auth::dkim::generate::DkimKeyPair;
use serde::{Deserialize, Serialize};

use super::AuthError;

const INDEX_FILE: &str = "keys.json";

/// The DKIM keys of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainKeys {
    pub domain: String,
    /// The pair that signs now (RSA first, then Ed25519).
    pub active: Vec<DkimKey>,
    /// Older keys, still to be published until `forget_retired`.
    pub retired: Vec<DkimKey>,
}

/// One DKIM key as DNS and the signer need to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimKey {
    pub selector: String,
    pub algorithm: KeyAlgorithm,
    /// Unix seconds.
    pub created_at: i64,
    /// The `p=` tag of the DNS record: for RSA the SubjectPublicKeyInfo DER
    /// (what `openssl rsa -pubout` prints), for Ed25519 the raw 32-byte key
    /// (RFC 8463 §4.2), base64.
    pub public_key_base64: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    Rsa2048,
    Ed25519,
}

impl KeyAlgorithm {
    /// The `k=` tag of the DNS record.
    pub fn dns_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "rsa",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl DkimKey {
    /// The TXT value to publish at `<selector>._domainkey.<domain>`.
    pub fn dns_value(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm.dns_name(),
            self.public_key_base64
        )
    }
}

/// `keys.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyIndex {
    keys: Vec<IndexEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct IndexEntry {
    #[serde(flatten)]
    key: DkimKey,
    state: KeyState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum KeyState {
    Active,
    Retired,
}

/// The domain's keys, creating an RSA-2048 and an Ed25519 key if it has no
/// active key.
pub fn ensure_domain_keys(dir: &Path, domain: &str) -> Result<DomainKeys, AuthError> {
    let domain = checked_domain(domain)?;
    let folder = dir.join(&domain);
    let mut index = read_index(&folder)?;
    if !index.keys.iter().any(|e| e.state == KeyState::Active) {
        add_active_pair(&folder, &mut index)?;
    }
    Ok(domain_keys(domain, &index))
}

/// A new active pair; the old active pair becomes retired (still listed and
/// published until `forget_retired`).
pub fn rotate(dir: &Path, domain: &str) -> Result<DomainKeys, AuthError> {
    let domain = checked_domain(domain)?;
    let folder = dir.join(&domain);
    let mut index = read_index(&folder)?;
    for entry in &mut index.keys {
        entry.state = KeyState::Retired;
    }
    add_active_pair(&folder, &mut index)?;
    Ok(domain_keys(domain, &index))
}

/// Forgets a retired key (the admin confirms its DNS record is gone) and
/// deletes its private key file.
pub fn forget_retired(dir: &Path, domain: &str, selector: &str) -> Result<(), AuthError> {
    let domain = checked_domain(domain)?;
    let folder = dir.join(&domain);
    let mut index = read_index(&folder)?;
    let Some(position) = index.keys.iter().position(|e| e.key.selector == selector) else {
        return Err(AuthError::UnknownSelector {
            domain,
            selector: selector.to_string(),
        });
    };
    if index.keys[position].state == KeyState::Active {
        return Err(AuthError::SelectorStillActive {
            domain,
            selector: selector.to_string(),
        });
    }
    index.keys.remove(position);
    write_index(&folder, &index)?; // durable: the key is forgotten
    let pem = private_key_path(&folder, selector);
    match fs::remove_file(&pem) {
        Ok(()) => sync_dir(&folder),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(AuthError::Io {
            action: "delete",
            path: pem,
            source,
        }),
    }
}

/// Every domain's keys, sorted by domain; a missing folder is no keys.
pub fn load_all(dir: &Path) -> Result<Vec<DomainKeys>, AuthError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io_error("read", dir, source)),
    };
    let mut all = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| io_error("read", dir, source))?;
        let Some(domain) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let folder = entry.path();
        if checked_domain(&domain).ok().as_deref() != Some(domain.as_str())
            || !folder.join(INDEX_FILE).is_file()
        {
            continue; // not a domain folder (a stray file, a temp file)
        }
        let index = read_index(&folder)?;
        all.push(domain_keys(domain, &index));
    }
    all.sort_by(|a, b| a.domain.cmp(&b.domain));
    Ok(all)
}

/// The private key of `key` in `dir/domain`, as stored (PEM).
pub(crate) fn read_private_key(
    dir: &Path,
    domain: &str,
    key: &DkimKey,
) -> Result<(PathBuf, Vec<u8>), AuthError> {
    let path = private_key_path(&dir.join(domain), &key.selector);
    let pem = fs::read(&path).map_err(|source| io_error("read", &path, source))?;
    Ok((path, pem))
}

/// Lower-cased `domain` if it is a plain DNS name (so it is a safe folder
/// name too: no `/`, no `..`, no leading dot).
fn checked_domain(domain: &str) -> Result<String, AuthError> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if domain.len() > 253 || !domain.contains('.') || !domain.split('.').all(label_ok) {
        return Err(AuthError::InvalidDomain(domain));
    }
    Ok(domain)
}

fn domain_keys(domain: String, index: &KeyIndex) -> DomainKeys {
    let pick = |state: KeyState| {
        let mut keys: Vec<DkimKey> = index
            .keys
            .iter()
            .filter(|e| e.state == state)
            .map(|e| e.key.clone())
            .collect();
        keys.sort_by_key(|k| {
            (
                std::cmp::Reverse(k.created_at),
                k.algorithm != KeyAlgorithm::Rsa2048,
            )
        });
        keys
    };
    DomainKeys {
        active: pick(KeyState::Active),
        retired: pick(KeyState::Retired),
        domain,
    }
}

/// Generates a new RSA-2048 + Ed25519 pair, writes the private keys, then
/// the index (the commit point).
fn add_active_pair(folder: &Path, index: &mut KeyIndex) -> Result<(), AuthError> {
    create_private_dir(folder)?;
    let now = chrono::Utc::now();
    let base = free_selector_base(index, &now.format("cm%Y%m%d").to_string());
    let created_at = now.timestamp();

    let rsa =
        DkimKeyPair::generate_rsa(2048).map_err(|e| AuthError::KeyGeneration(e.to_string()))?;
    let rsa_key = DkimKey {
        selector: format!("{base}-rsa"),
        algorithm: KeyAlgorithm::Rsa2048,
        created_at,
        public_key_base64: BASE64.encode(rsa_spki(rsa.public_key())),
    };
    write_private(
        folder,
        &rsa_key.selector,
        &pem("RSA PRIVATE KEY", rsa.private_key()),
    )?;

    let ed =
        DkimKeyPair::generate_ed25519().map_err(|e| AuthError::KeyGeneration(e.to_string()))?;
    let ed_key = DkimKey {
        selector: format!("{base}-ed"),
        algorithm: KeyAlgorithm::Ed25519,
        created_at,
        public_key_base64: BASE64.encode(ed.public_key()),
    };
    write_private(
        folder,
        &ed_key.selector,
        &pem("PRIVATE KEY", ed.private_key()),
    )?;

    for key in [rsa_key, ed_key] {
        index.keys.push(IndexEntry {
            key,
            state: KeyState::Active,
        });
    }
    write_index(folder, index)
}

/// `cmYYYYMMDD`, or with a letter b..z (then a number) if taken.
fn free_selector_base(index: &KeyIndex, date: &str) -> String {
    let taken = |base: &str| {
        index.keys.iter().any(|e| {
            e.key.selector.strip_suffix("-rsa") == Some(base)
                || e.key.selector.strip_suffix("-ed") == Some(base)
        })
    };
    if !taken(date) {
        return date.to_string();
    }
    (b'b'..=b'z')
        .map(|letter| format!("{date}{}", letter as char))
        .chain((27u32..).map(|n| format!("{date}n{n}")))
        .find(|base| !taken(base))
        .unwrap_or_else(|| format!("{date}x"))
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (RFC 5280 §4.1,
/// algorithm rsaEncryption), the form DKIM records carry in practice.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const RSA_ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0u8]; // no unused bits
    bit_string.extend_from_slice(pkcs1);
    let mut body = RSA_ALGORITHM.to_vec();
    der_push(&mut body, 0x03, &bit_string);
    let mut spki = Vec::with_capacity(body.len() + 4);
    der_push(&mut spki, 0x30, &body);
    spki
}

fn der_push(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let encoded = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

fn private_key_path(folder: &Path, selector: &str) -> PathBuf {
    folder.join(format!("{selector}.pem"))
}

fn read_index(folder: &Path) -> Result<KeyIndex, AuthError> {
    let path = folder.join(INDEX_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AuthError::DamagedKey {
            path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyIndex::default()),
        Err(source) => Err(io_error("read", &path, source)),
    }
}

fn write_index(folder: &Path, index: &KeyIndex) -> Result<(), AuthError> {
    let mut json = serde_json::to_vec_pretty(index).map_err(|e| AuthError::Io {
        action: "encode",
        path: folder.join(INDEX_FILE),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    write_atomically(&folder.join(INDEX_FILE), &json, 0o644)
}

fn write_private(folder: &Path, selector: &str, pem: &[u8]) -> Result<(), AuthError> {
    write_atomically(&private_key_path(folder, selector), pem, 0o600)
}

/// tmp (created with `mode`), write, fsync, rename, fsync the folder: after
/// this returns the file is durable under its name.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AuthError> {
    crate::fsutil::write_atomically(path, bytes, mode)
        .map_err(|source| io_error("write", path, source))
}

fn create_private_dir(folder: &Path) -> Result<(), AuthError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .map_err(|source| io_error("create the folder", folder, source))?;
    if let Some(parent) = folder.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(folder: &Path) -> Result<(), AuthError> {
    fs::File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| io_error("sync", folder, source))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> AuthError {
    AuthError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_a_pair_once_with_owner_only_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ensure_domain_keys(dir.path(), "Campus.Test.").unwrap();
        assert_eq!(keys.domain, "campus.test");
        assert_eq!(keys.active.len(), 2);
        assert!(keys.retired.is_empty());
        let (rsa, ed) = (&keys.active[0], &keys.active[1]);
        assert_eq!(rsa.algorithm, KeyAlgorithm::Rsa2048);
        assert_eq!(ed.algorithm, KeyAlgorithm::Ed25519);
        assert!(rsa.selector.starts_with("cm") && rsa.selector.ends_with("-rsa"));
        assert_eq!(
            ed.selector.trim_end_matches("-ed"),
            rsa.selector.trim_end_matches("-rsa")
        );
        // SPKI of a 2048-bit key is 294 bytes; a raw Ed25519 key 32.
        assert_eq!(BASE64.decode(&rsa.public_key_base64).unwrap().len(), 294);
        assert_eq!(BASE64.decode(&ed.public_key_base64).unwrap().len(), 32);
        assert!(rsa.dns_value().starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"));

        let folder = dir.path().join("campus.test");
        assert_eq!(mode(&folder), 0o700);
        for key in &keys.active {
            let path = folder.join(format!("{}.pem", key.selector));
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        // A second call changes nothing.
        assert_eq!(ensure_domain_keys(dir.path(), "campus.test").unwrap(), keys);
        assert_eq!(load_all(dir.path()).unwrap(), vec![keys]);
    }

    #[test]
    fn rotation_keeps_the_old_pair_retired_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_domain_keys(dir.path(), "campus.test").unwrap();
        let rotated = rotate(dir.path(), "campus.test").unwrap();
        assert_eq!(rotated.retired, first.active);
        assert_eq!(rotated.active.len(), 2);
        assert!(rotated
            .active
            .iter()
            .all(|k| first.active.iter().all(|old| old.selector != k.selector)));
        // Same day: the new selectors carry a letter.
        assert!(rotated.active[0].selector.ends_with("b-rsa"));

        // Reloading from disk gives the same picture.
        assert_eq!(load_all(dir.path()).unwrap(), vec![rotated.clone()]);

        // An active key cannot be forgotten, an unknown one neither.
        assert!(matches!(
            forget_retired(dir.path(), "campus.test", &rotated.active[0].selector),
            Err(AuthError::SelectorStillActive { .. })
        ));
        assert!(matches!(
            forget_retired(dir.path(), "campus.test", "nope"),
            Err(AuthError::UnknownSelector { .. })
        ));
        for old in &first.active {
            forget_retired(dir.path(), "campus.test", &old.selector).unwrap();
            assert!(!dir
                .path()
                .join("campus.test")
                .join(format!("{}.pem", old.selector))
                .exists());
        }
        let after = load_all(dir.path()).unwrap();
        assert_eq!(after[0].active, rotated.active);
        assert!(after[0].retired.is_empty());
    }

    #[test]
    fn load_all_skips_strays_and_reports_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_all(&dir.path().join("missing")).unwrap().is_empty());
        fs::write(dir.path().join("README"), "stray").unwrap();
        fs::create_dir(dir.path().join("empty.test")).unwrap();
        assert!(load_all(dir.path()).unwrap().is_empty());
        fs::write(dir.path().join("empty.test").join(INDEX_FILE), "{nope").unwrap();
        let err = load_all(dir.path()).unwrap_err();
        assert!(matches!(err, AuthError::DamagedKey { .. }), "{err}");
    }

    #[test]
    fn refuses_domains_that_are_not_plain_names() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "../etc",
            "a/b.test",
            "localhost",
            "",
            ".test",
            "a..test",
            "-a.test",
        ] {
            assert!(
                matches!(
                    ensure_domain_keys(dir.path(), bad),
                    Err(AuthError::InvalidDomain(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn spki_wrapping_is_well_formed_der() {
        let spki = rsa_spki(&[0x30, 0x03, 0x02, 0x01, 0x05]);
        assert_eq!(spki[0], 0x30);
        assert_eq!(spki[1] as usize, spki.len() - 2);
        let mut long = Vec::new();
        der_push(&mut long, 0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
