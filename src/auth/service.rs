//! The service credential with which the mailbox role (the webmail) submits
//! mail to the engine for a logged-in user, as any mail client would, but
//! without knowing that user's password.
//!
//! SASL PLAIN (RFC 4616 §2) carries an authorization identity beside the
//! login: the webmail logs in as `SERVICE_IDENTITY` with this secret and
//! asks to act as the user. RFC 4616 leaves to the server whether the
//! authentication identity may act as the authorization identity; the
//! engine's rule is in `engine::smtp::authorize`.
//!
//! Owns: the secret file `Config::submission_secret()` in the data folder:
//! 256 random bits, base64url, one line, owner-only (0600).
//!
//! Invariants:
//! - The file is made once, on the first start of either role, and never
//!   half-written: it is written to a unique temporary file, fsynced, then
//!   hard-linked into place, which fails if another process won the race;
//!   the loser reads the winner's file. So both roles always hold the same
//!   secret.
//! - The secret is never logged; comparing it takes time independent of
//!   where a guess differs (BLAKE3 hashes compared in constant time).
//! - `SERVICE_IDENTITY` has no `@`, so it can never be a user's address.
//!
//! Reads untrusted input: only the admin's own file (and, in `matches`, a
//! password a client sent, which is only compared).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use rand::RngCore;

/// The SASL authentication identity of the webmail's submissions.
pub const SERVICE_IDENTITY: &str = "campusmail-webmail";

/// Length of a well-formed secret (32 bytes, base64url without padding).
const SECRET_LEN: usize = 43;

#[derive(Debug, thiserror::Error)]
pub enum ServiceSecretError {
    #[error("cannot read or write the submission service secret {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the submission service secret {path} is malformed; delete it and restart both roles to make a new one")]
    Malformed { path: String },
}

/// The secret, held in memory by both roles.
#[derive(Clone)]
pub struct ServiceSecret(String);

impl std::fmt::Debug for ServiceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceSecret(..)")
    }
}

impl ServiceSecret {
    /// The secret, for the SASL exchange only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when `candidate` is the secret (constant time: BLAKE3's `Hash`
    /// compares in constant time, and hashing hides the length).
    pub fn matches(&self, candidate: &str) -> bool {
        blake3::hash(self.0.as_bytes()) == blake3::hash(candidate.as_bytes())
    }

    #[cfg(test)]
    pub fn for_tests(text: &str) -> ServiceSecret {
        ServiceSecret(text.to_string())
    }
}

/// Reads the secret at `path`, making it first when it does not exist.
pub fn ensure(path: &Path) -> Result<ServiceSecret, ServiceSecretError> {
    let io = |source| ServiceSecretError::Io {
        path: path.display().to_string(),
        source,
    };
    if !path.exists() {
        create(path).map_err(io)?;
    }
    load(path)
}

/// Reads an existing secret.
pub fn load(path: &Path) -> Result<ServiceSecret, ServiceSecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServiceSecretError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let secret = text.trim();
    let well_formed = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(ServiceSecretError::Malformed {
            path: path.display().to_string(),
        });
    }
    Ok(ServiceSecret(secret.to_string()))
}

/// Writes a fresh secret to `path` unless one appears there first.
fn create(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let tmp = dir.join(format!(
        ".submission-service.{}.{}.tmp",
        std::process::id(),
        rand::rngs::OsRng.next_u64()
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(format!("{secret}\n").as_bytes())?;
        // The bytes are durable here; the link below makes them visible.
        file.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            // The other role made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        std::fs::File::open(dir)?.sync_all()
    })();
    let _ = std::fs::remove_file(&tmp);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_owner_only_and_then_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("submission-service.secret");
        let first = ensure(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = ensure(&path).unwrap();
        assert_eq!(first.expose(), again.expose());
        assert_eq!(first.expose().len(), SECRET_LEN);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn matches_only_the_same_secret() {
        let secret = ServiceSecret::for_tests("a".repeat(SECRET_LEN).as_str());
        assert!(secret.matches(&"a".repeat(SECRET_LEN)));
        assert!(!secret.matches(&"a".repeat(SECRET_LEN - 1)));
        assert!(!secret.matches(""));
        assert!(!format!("{secret:?}").contains("aaa"), "never printed");
    }

    #[test]
    fn a_malformed_file_is_an_error_not_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            ensure(&path),
            Err(ServiceSecretError::Malformed { .. })
        ));
    }
}
