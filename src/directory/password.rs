//! Password hashing: argon2id in PHC string form.
//!
//! Invariant: no plain password is ever stored or logged; only the PHC string
//! made here is. Verification runs in constant time inside `argon2`.
//!
//! Invariant: a stored value that is not a PHC string (the [`NO_PASSWORD`]
//! sentinel of accounts imported without a password, or a damaged record)
//! never verifies, and checking it costs the same argon2 work as a real
//! check, so timing does not tell such accounts apart.

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

/// Stored instead of a hash for accounts made without a password (`user
/// import` rows with an empty password): not a PHC string (those start with
/// `$`), so no password ever verifies against it. `user passwd` replaces it.
pub const NO_PASSWORD: &str = "!no-password-set";

/// Whether `stored` is a hash some password could match (not the sentinel).
pub fn is_usable_hash(stored: &str) -> bool {
    PasswordHash::new(stored).is_ok()
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

/// True when `password` matches the PHC string `stored`; false for any
/// malformed hash or the [`NO_PASSWORD`] sentinel, after the same work as a
/// real check.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => verify_parsed(password, &parsed),
        Err(_) => verify_nothing(password),
    }
}

fn verify_parsed(password: &str, parsed: &PasswordHash<'_>) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), parsed)
        .is_ok()
}

/// Spends the time of one real verification and fails, for logins naming no
/// account (or an account without a usable hash), so response times do not
/// tell which accounts exist.
pub fn verify_nothing(password: &str) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no account has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    // Never back through `verify_password`: an unparsable dummy would recurse.
    if let Ok(parsed) = PasswordHash::new(hash) {
        let _ = verify_parsed(password, &parsed);
    }
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

    #[test]
    fn the_no_password_sentinel_never_verifies_and_costs_a_real_check() {
        assert!(!is_usable_hash(NO_PASSWORD));
        assert!(is_usable_hash(&hash_password("correct horse").unwrap()));
        for attempt in ["", NO_PASSWORD, "!no-password-set", "anything at all"] {
            assert!(!verify_password(attempt, NO_PASSWORD), "{attempt:?}");
        }
        // Warm the dummy hash, then compare: a sentinel check must not be
        // an instant "no" next to a real one (argon2 takes milliseconds).
        // The fastest of three of each, so a busy machine cannot fake it.
        let real = hash_password("correct horse").unwrap();
        verify_nothing("warm-up");
        let fastest = |stored: &str| {
            (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    assert!(!verify_password("wrong horse", stored));
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        let real_time = fastest(&real);
        let sentinel_time = fastest(NO_PASSWORD);
        assert!(
            sentinel_time * 4 > real_time,
            "sentinel {sentinel_time:?} vs real {real_time:?}"
        );
    }
}
