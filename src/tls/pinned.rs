//! A rustls client configuration that trusts exactly one certificate: our
//! own, read from `[tls] cert`. The webmail uses it to reach the engine's
//! submission port with STARTTLS, where the engine presents that same
//! certificate (often the self-signed one made on first run).
//!
//! Pinning the exact certificate is stricter than a CA check: no other
//! certificate is accepted, whoever signed it, so the host name is not
//! checked (the engine is reached by IP address on this node). Handshake
//! signatures are verified with the ring provider, so the peer must hold
//! the certificate's private key.
//!
//! Owns: nothing on disk; one `ClientConfig` per call.
//!
//! Invariants:
//! - Only the first (end-entity) certificate of the configured chain is
//!   trusted, byte for byte; anything else fails the handshake.
//! - Nothing here is used for connections to other servers (those use
//!   `engine::delivery::tls_client`).
//!
//! Reads untrusted input: the server's certificate and handshake (compared
//! and parsed by rustls).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::TlsError;

/// A client configuration that accepts only the certificate in `cert_path`.
pub fn client_config(cert_path: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let path = cert_path.display().to_string();
    let pinned = CertificateDer::pem_file_iter(cert_path)
        .and_then(|mut it| it.next().transpose())
        .map_err(|e| TlsError::Cert {
            path: path.clone(),
            message: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Cert {
            path,
            message: "no certificate in the file".into(),
        })?;
    Ok(client_config_for(pinned))
}

/// A client configuration that accepts only `pinned`.
pub fn client_config_for(pinned: CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let provider = rustls::crypto::ring::default_provider();
    let verifier = Arc::new(PinnedCertificate {
        pinned,
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        // The ring provider supports the safe defaults; the fallback keeps
        // this free of `expect`.
        .unwrap_or_else(|_| rustls::ClientConfig::builder());
    Arc::new(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    )
}

#[derive(Debug)]
struct PinnedCertificate {
    pinned: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
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

    fn self_signed() -> (
        CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(
            made.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        (made.cert.der().clone(), key)
    }

    /// Runs a handshake in memory between a server with `server_cert` and a
    /// client pinned to `pinned`; true when it completes.
    fn handshake(
        server_cert: (
            CertificateDer<'static>,
            rustls::pki_types::PrivateKeyDer<'static>,
        ),
        pinned: CertificateDer<'static>,
    ) -> bool {
        let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.0], server_cert.1)
        .unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut client =
            rustls::ClientConnection::new(client_config_for(pinned), name.to_owned()).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            if client.write_tls(&mut buf).is_err() {
                return false;
            }
            if server.read_tls(&mut &buf[..]).is_err() || server.process_new_packets().is_err() {
                return false;
            }
            let mut buf = Vec::new();
            if server.write_tls(&mut buf).is_err() {
                return false;
            }
            if client.read_tls(&mut &buf[..]).is_err() || client.process_new_packets().is_err() {
                return false;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                return true;
            }
        }
        false
    }

    #[test]
    fn our_certificate_is_accepted_by_address_without_a_name_check() {
        let ours = self_signed();
        let pinned = ours.0.clone();
        assert!(handshake(ours, pinned));
    }

    #[test]
    fn any_other_certificate_is_refused() {
        let ours = self_signed();
        let other = self_signed();
        assert!(!handshake(other, ours.0));
    }

    #[test]
    fn the_pinned_certificate_comes_from_the_configured_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        assert!(client_config(&path).is_err(), "a missing file is an error");
        std::fs::write(&path, "not a certificate").unwrap();
        assert!(client_config(&path).is_err());
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&path, made.cert.pem()).unwrap();
        assert!(client_config(&path).is_ok());
    }
}
