//! CSRF protection (R8): random tokens and their constant-time check.
//!
//! Owns: the pre-session login token cookie (`cm_login_csrf`). Logged-in
//! forms use the token stored in the server-side session (`session.rs`).
//!
//! Invariants:
//! - Every POST handler checks a token before doing anything else.
//! - Tokens are 256 random bits from the OS, base64url without padding.
//! - Comparison takes time independent of where the tokens differ; an empty
//!   or missing token never matches.
//! - The login form uses a double-submit token: the hidden field must equal
//!   the `cm_login_csrf` cookie, which is `SameSite=Strict; HttpOnly; Secure`.
//!
//! Reads untrusted input: the submitted token and cookie (only compared).

use base64::Engine;
use rand::RngCore;

/// Name of the hidden field on every form.
pub const FIELD: &str = "csrf_token";
/// Cookie holding the pre-session token of the login form.
pub const LOGIN_COOKIE: &str = "cm_login_csrf";

/// A fresh random token (256 bits, base64url, 43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// True when `submitted` is present, non-empty and equal to `expected`.
pub fn matches(expected: &str, submitted: Option<&str>) -> bool {
    match submitted {
        Some(got) if !expected.is_empty() && !got.is_empty() => {
            constant_time_eq(expected.as_bytes(), got.as_bytes())
        }
        _ => false,
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // black_box keeps the optimiser from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn check_accepts_only_the_same_token() {
        let token = new_token();
        assert!(matches(&token, Some(&token)));
        assert!(!matches(&token, Some(&new_token())));
        assert!(!matches(&token, Some(&token[..42])));
        assert!(!matches(&token, Some("")));
        assert!(!matches(&token, None));
        assert!(!matches("", Some("")));
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
