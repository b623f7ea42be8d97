//! The rustls client configuration for STARTTLS to other mail servers.
//!
//! Opportunistic TLS (RFC 7435, and RFC 3207 as deployed) encrypts without
//! authenticating the server: MX hosts commonly present self-signed or
//! mismatched certificates, and refusing them would only push the mail back
//! to plain text. So any certificate chain is accepted, but the handshake
//! signatures are still verified with the ring provider's algorithms: the
//! peer must hold the private key of the certificate it shows, and the
//! session keys are really agreed with that peer.
//!
//! TODO(rfc8461/rfc7672): MTA-STS and DANE, which make authentication
//! possible where the receiving domain asks for it.
//!
//! Owns: one `ClientConfig`, built on first use and shared by every
//! connection.
//!
//! Invariants:
//! - One rustls (0.23, ring provider) for the whole binary.
//! - Certificates are never trusted for identity: nothing here may be used
//!   where the peer must be authenticated.
//!
//! Reads untrusted input: yes, the server's certificate and handshake
//! (parsed by rustls).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The shared client configuration for opportunistic SMTP TLS.
pub fn opportunistic_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

fn build() -> Arc<rustls::ClientConfig> {
    let provider = rustls::crypto::ring::default_provider();
    let verifier = Arc::new(AnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth()
        })
        // The ring provider always supports the safe default versions; the
        // fallback only keeps this free of `expect`.
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        });
    Arc::new(config)
}

/// Accepts any certificate chain, verifies handshake signatures (RFC 7435).
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Opportunistic: the chain is not judged (see the module comment).
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_once_and_shared() {
        let a = opportunistic_config();
        let b = opportunistic_config();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!AnyCertificate {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
        .supported_verify_schemes()
        .is_empty());
    }
}
