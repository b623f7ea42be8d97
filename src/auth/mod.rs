//! Mail authentication (R7): SPF, DKIM, DMARC and ARC for mail coming in,
//! DKIM signatures for mail going out, and the DNS records an admin must
//! publish for both to work.
//!
//! - `inbound`: one verdict per received message (an `Authentication-Results:`
//!   header field, a DMARC policy action, a log line); `header_fields` removes
//!   forged results carrying our authserv-id.
//! - `keys`: the DKIM keys of each domain on disk (create, rotate, retire).
//! - `signing`: `DKIM-Signature:` header fields (RSA-SHA256 and
//!   Ed25519-SHA256) for outbound mail.
//! - `dns_records`: the MX, SPF, DKIM and DMARC records to publish, and a
//!   check of what DNS really says.
//! - `service`: the secret with which the webmail submits mail to the
//!   engine on behalf of a logged-in user (SASL PLAIN authzid, RFC 4616).
//!
//! The cryptography and the SPF/DKIM/DMARC/ARC logic are mail-auth's (built
//! on ring); this module chooses policy and owns the keys. DNS goes through
//! `engine::delivery::dns`, whose tokio runtime runs mail-auth's lookups.
//!
//! Owns: `<data_dir>/dkim/` (see `keys`) and the submission service secret
//! (see `service`).
//!
//! Invariants:
//! - Verification outcomes are data (`InboundVerdict`), never `Err`: a DNS
//!   failure is a `temperror` result, not an error.
//! - Nothing here knows about tokio; only `engine::delivery::dns` does.
//! - Private keys are written owner-only (0600) and atomically.
//!
//! Reads untrusted input: yes (received messages, DNS answers); parsed by
//! mail-auth and by the header scanner in `header_fields`, never with
//! unwrap/expect on that data.

pub mod dns_records;
mod header_fields;
pub mod inbound;
pub mod keys;
pub mod service;
pub mod signing;

#[cfg(test)]
mod test_support;

pub use dns_records::{check, records, DnsRecord, Finding};
pub use inbound::{
    claims_authserv_id, strip_forged_results, Authenticator, InboundRequest, InboundVerdict,
    PolicyAction,
};
pub use keys::{DkimKey, DomainKeys, KeyAlgorithm};
pub use signing::DkimSigner;

/// What went wrong managing keys or setting up verification; each message
/// says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "`{0}` is not a usable domain name for DKIM keys: use letters, digits, hyphens and dots"
    )]
    InvalidDomain(String),
    #[error(
        "`{0}` is not a usable authserv-id: set the node's host name to a plain DNS name (RFC 8601 §2.5)"
    )]
    InvalidAuthservId(String),
    #[error("the domain {domain} has no DKIM key with selector `{selector}`: `campusmail dns records {domain}` lists its keys")]
    UnknownSelector { domain: String, selector: String },
    #[error("the DKIM key `{selector}` of {domain} is still active: rotate the keys first, then forget the old one once its DNS record is gone")]
    SelectorStillActive { domain: String, selector: String },
    #[error("cannot {action} {path}: {source}; check that the folder exists and campusmail may write it")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the DKIM key file {path} is damaged ({reason}); restore it from a backup, or rotate the domain's keys and publish the new DNS records")]
    DamagedKey {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot generate a DKIM key: {0}; try again, and report a bug if it persists")]
    KeyGeneration(String),
}
