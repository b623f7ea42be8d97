//! Password hashing: argon2id in PHC string form.
//!
//! Invariant: no plain password is ever stored or logged; only the PHC string
//! made here is. Verification runs in constant time inside `argon2`.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

/// Shortest password the directory accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Hashes `password` with argon2id and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches the PHC string `stored`; false for any malformed hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one real verification and fails, for logins naming no
/// account, so response times do not tell which accounts exist.
pub fn verify_nothing(password: &str) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no account has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    let _ = verify_password(password, hash);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
    }
}
