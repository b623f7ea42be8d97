//! Outbound DKIM signatures (RFC 6376) with both of a domain's active keys:
//! RSA-SHA256 and Ed25519-SHA256 (RFC 8463 §4: sign with both so verifiers
//! that do not know Ed25519 still find a signature they can check).
//!
//! Signed header fields: From, To, Cc, Subject, Date, Message-ID,
//! MIME-Version, Content-Type, Reply-To, In-Reply-To, References, with
//! relaxed/relaxed canonicalization. mail-auth lists every listed field in
//! `h=` even when absent from the message ("over-signing", RFC 6376 §8.15),
//! so nobody can add, say, a second From or a Cc later without breaking the
//! signature.
//!
//! Owns: the loaded private keys, in memory (read once from `keys`' folder).
//!
//! Invariants: only the exact RFC5322.From domain is signed for (no parent or
//! subdomain fallback); a domain with no key is simply not signed.
//!
//! Reads untrusted input: no (our own outbound messages, our key files).

use std::collections::BTreeMap;
use std::path::Path;

use mail_auth::common::crypto::{DkimKey as SigningKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner as MailAuthSigner, Done};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use super::keys::{self, KeyAlgorithm};
use super::AuthError;

/// The header fields we sign (RFC 6376 §5.4.1's recommended set).
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "In-Reply-To",
    "References",
];

/// Signs outbound mail with the active keys of every domain under `dir`.
pub struct DkimSigner {
    /// Lower-case domain → its signers (RSA first).
    domains: BTreeMap<String, Vec<MailAuthSigner<SigningKey, Done>>>,
}

impl DkimSigner {
    /// Loads the active keys of every domain under `dir` (a domain with no
    /// keys just isn't signed).
    pub fn load(dir: &Path) -> Result<DkimSigner, AuthError> {
        let mut domains = BTreeMap::new();
        for domain_keys in keys::load_all(dir)? {
            let mut signers = Vec::new();
            for key in &domain_keys.active {
                let (path, pem) = keys::read_private_key(dir, &domain_keys.domain, key)?;
                let damaged = |reason: String| AuthError::DamagedKey {
                    path: path.clone(),
                    reason,
                };
                let der =
                    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| damaged(e.to_string()))?;
                let signing_key = match key.algorithm {
                    KeyAlgorithm::Rsa2048 => SigningKey::Rsa(
                        RsaKey::<Sha256>::from_key_der(der).map_err(|e| damaged(e.to_string()))?,
                    ),
                    KeyAlgorithm::Ed25519 => SigningKey::Ed25519(
                        Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_der())
                            .map_err(|e| damaged(e.to_string()))?,
                    ),
                };
                signers.push(
                    MailAuthSigner::from_key(signing_key)
                        .domain(domain_keys.domain.clone())
                        .selector(key.selector.clone())
                        .headers(SIGNED_HEADERS)
                        .header_canonicalization(Canonicalization::Relaxed)
                        .body_canonicalization(Canonicalization::Relaxed),
                );
            }
            if !signers.is_empty() {
                domains.insert(domain_keys.domain, signers);
            }
        }
        Ok(DkimSigner { domains })
    }

    /// `DKIM-Signature:` header fields (one per active key), each complete,
    /// folded and ending in CRLF, to prepend to `message`, whose
    /// RFC5322.From domain is `domain`; `None` when we hold no key for it
    /// (or the message has none of the fields we sign).
    pub fn sign(&self, message: &[u8], domain: &str) -> Option<String> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let signers = self.domains.get(&domain)?;
        let mut fields = String::new();
        for signer in signers {
            match signer.sign(message) {
                Ok(signature) => fields.push_str(&signature.to_header()),
                Err(e) => {
                    tracing::warn!(domain = %domain, error = %e, "cannot DKIM-sign a message");
                }
            }
        }
        (!fields.is_empty()).then_some(fields)
    }

    /// The domains we sign for, sorted.
    pub fn domains(&self) -> Vec<String> {
        self.domains.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::ensure_domain_keys;
    use crate::auth::test_support::{dkimpy_verify, message};

    #[test]
    fn signs_with_both_keys_of_the_exact_domain_only() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ensure_domain_keys(dir.path(), "campus.test").unwrap();
        let signer = DkimSigner::load(dir.path()).unwrap();
        assert_eq!(signer.domains(), ["campus.test"]);

        let msg = message("alice@campus.test", "hello");
        let fields = signer.sign(&msg, "Campus.Test").unwrap();
        assert_eq!(fields.matches("DKIM-Signature:").count(), 2);
        assert!(fields.ends_with("\r\n"));
        assert!(fields.contains("a=rsa-sha256"));
        assert!(fields.contains("a=ed25519-sha256"));
        assert!(fields.contains("c=relaxed/relaxed"));
        for key in &keys.active {
            assert!(fields.contains(&format!("s={}", key.selector)));
        }
        assert!(signer.sign(&msg, "sub.campus.test").is_none());
        assert!(signer.sign(&msg, "other.test").is_none());
    }

    #[test]
    fn rotated_keys_sign_and_retired_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let old = ensure_domain_keys(dir.path(), "campus.test").unwrap();
        let new = keys::rotate(dir.path(), "campus.test").unwrap();
        let fields = DkimSigner::load(dir.path())
            .unwrap()
            .sign(&message("alice@campus.test", "hi"), "campus.test")
            .unwrap();
        for key in &new.active {
            assert!(fields.contains(&format!("s={};", key.selector)));
        }
        for key in &old.active {
            assert!(!fields.contains(&format!("s={};", key.selector)));
        }
    }

    #[test]
    fn an_empty_or_missing_folder_signs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let signer = DkimSigner::load(&dir.path().join("dkim")).unwrap();
        assert!(signer.domains().is_empty());
        assert!(signer.sign(b"From: a@b.test\r\n\r\n", "b.test").is_none());
    }

    #[test]
    fn a_damaged_private_key_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ensure_domain_keys(dir.path(), "campus.test").unwrap();
        let path = dir
            .path()
            .join("campus.test")
            .join(format!("{}.pem", keys.active[0].selector));
        std::fs::write(
            &path,
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        match DkimSigner::load(dir.path()) {
            Err(AuthError::DamagedKey { path: p, .. }) => assert_eq!(p, path),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a damaged key loaded"),
        }
    }

    /// An independent verifier (dkimpy, Debian python3-dkim) accepts both
    /// signatures, given our public keys instead of DNS.
    #[test]
    fn signatures_verify_with_dkimpy() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ensure_domain_keys(dir.path(), "campus.test").unwrap();
        let signer = DkimSigner::load(dir.path()).unwrap();
        let body = "Hello,\r\n\r\nlines  with   spaces \r\nand a trailing blank line\r\n\r\n";
        let msg = message("Alice <alice@campus.test>", body);
        let fields = signer.sign(&msg, "campus.test").unwrap();
        let mut signed = fields.into_bytes();
        signed.extend_from_slice(&msg);
        let results = dkimpy_verify(&signed, &keys, "campus.test");
        assert_eq!(results, vec![true, true], "dkimpy rejected a signature");

        // And it notices tampering (so the check above means something).
        let tampered = String::from_utf8(signed)
            .unwrap()
            .replace("Hello,", "Jello,")
            .into_bytes();
        assert_eq!(
            dkimpy_verify(&tampered, &keys, "campus.test"),
            vec![false, false]
        );
    }
}
