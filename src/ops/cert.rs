//! When the appliance's TLS certificate (the one SMTP and HTTPS present)
//! stops being valid: its `notAfter` (RFC 5280 §4.1.2.5), read with
//! `x509-parser` from the first certificate of the PEM chain.
//!
//! Reads untrusted input: the certificate file the admin installed
//! (parsed by x509-parser; a bad file gives `None` and a log line).

use std::path::Path;

/// Unix seconds of the certificate's `notAfter`, if it can be read.
pub fn expiry(cert_pem: &Path) -> Option<i64> {
    let bytes = match std::fs::read(cert_pem) {
        Ok(b) => b,
        Err(err) => {
            tracing::warn!(path = %cert_pem.display(), %err, "cannot read the TLS certificate");
            return None;
        }
    };
    let parsed = x509_parser::pem::parse_x509_pem(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|(_, pem)| {
            pem.parse_x509()
                .map(|cert| cert.validity().not_after.timestamp())
                .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(at) => Some(at),
        Err(err) => {
            tracing::warn!(path = %cert_pem.display(), %err, "cannot parse the TLS certificate");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_a_made_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["mail.campus.test".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 3, 1);
        let cert = params.self_signed(&key).unwrap();
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        // 2031-03-01T00:00:00Z
        assert_eq!(expiry(&path), Some(1_930_089_600));
        std::fs::write(&path, "not a certificate").unwrap();
        assert_eq!(expiry(&path), None);
        assert_eq!(expiry(&dir.path().join("missing.pem")), None);
    }
}
