//! DKIM signing of users' outgoing mail, with keys reloaded as admins add
//! domains or rotate keys.
//!
//! Owns: the engine's in-memory copy of the DKIM keys under `dkim/`
//! (written by `campusmail domain add` and `campusmail dkim rotate`).
//!
//! Invariants:
//! - Keys are re-read at most once a minute, so a rotation takes effect
//!   within a minute without a restart; a read failure keeps the old keys.
//! - Only mail whose From: domain has keys is signed; nothing else changes.
//!
//! Reads untrusted input: the From: header of users' messages (parsed by
//! mail-parser).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::DkimSigner;

const RELOAD_EVERY: Duration = Duration::from_secs(60);

pub struct SigningKeys {
    dir: PathBuf,
    state: Mutex<(Instant, Option<Arc<DkimSigner>>)>,
}

impl SigningKeys {
    pub fn new(dir: PathBuf) -> SigningKeys {
        let keys = SigningKeys {
            dir,
            state: Mutex::new((Instant::now(), None)),
        };
        keys.reload();
        keys
    }

    fn reload(&self) -> Option<Arc<DkimSigner>> {
        let loaded = match DkimSigner::load(&self.dir) {
            Ok(signer) => Some(Arc::new(signer)),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot load DKIM keys; keeping the previous ones");
                None
            }
        };
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        state.0 = Instant::now();
        if loaded.is_some() {
            state.1 = loaded;
        }
        state.1.clone()
    }

    fn current(&self) -> Option<Arc<DkimSigner>> {
        let (at, signer) = {
            let state = match self.state.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            (state.0, state.1.clone())
        };
        if at.elapsed() >= RELOAD_EVERY {
            return self.reload();
        }
        signer
    }

    /// DKIM-Signature fields for `message` when its From: domain has keys.
    pub fn sign(&self, message: &[u8]) -> Option<String> {
        let domain = from_domain(message)?;
        self.current()?.sign(message, &domain)
    }
}

/// The domain of the first From: address, lower-cased.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(message)?;
    let address = parsed.from()?.first()?.address()?.to_string();
    let (_, domain) = address.rsplit_once('@')?;
    Some(domain.trim_end_matches('>').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_domain_reads_the_header() {
        assert_eq!(
            from_domain(b"From: Kim <Kim@Campus.Test>\r\nSubject: x\r\n\r\nbody").as_deref(),
            Some("campus.test")
        );
        assert_eq!(from_domain(b"Subject: x\r\n\r\n"), None);
        assert_eq!(from_domain(b""), None);
    }
}
