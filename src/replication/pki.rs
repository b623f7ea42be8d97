//! The pair's own small PKI: a cluster CA made by `pair init` on the first
//! node, a certificate per node signed by it, and the rustls configurations
//! for the mutual-TLS replication link.
//!
//! Files, in `<data_dir>/pair/` (keys owner-only):
//! - `ca.pem` (both nodes), `ca.key` (only the node that ran `pair init`:
//!   it signs the joining node's certificate);
//! - `node.pem`, `node.key`: this node's certificate (SAN = node name).
//!
//! Invariants:
//! - only a certificate signed by the cluster CA is accepted on the link,
//!   and, when `[pair] peer_fingerprint` is set, only the one with that
//!   SHA-256 fingerprint; a connection without a client certificate may
//!   only ask to join with a one-time token (see `join.rs`);
//! - the CA is rebuilt from the same parameters each time it signs, so the
//!   issuer name always matches `ca.pem`'s subject.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot make the pair's certificates: {0}")]
    Generate(String),
    #[error("cannot read or write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Bad(String),
}

pub struct PairFiles {
    pub dir: PathBuf,
}

/// A node certificate and its key, as PEM.
#[derive(Clone, Debug)]
pub struct NodeCert {
    pub cert_pem: String,
    pub key_pem: String,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "campusmail pair CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn generate(e: impl std::fmt::Display) -> PkiError {
    PkiError::Generate(e.to_string())
}

impl PairFiles {
    pub fn new(data_dir: &Path) -> PairFiles {
        PairFiles {
            dir: data_dir.join("pair"),
        }
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn node_cert(&self) -> PathBuf {
        self.dir.join("node.pem")
    }
    pub fn node_key(&self) -> PathBuf {
        self.dir.join("node.key")
    }

    pub fn exists(&self) -> bool {
        self.ca_cert().exists() && self.node_cert().exists() && self.node_key().exists()
    }

    /// Makes the cluster CA and this node's certificate (`pair init`).
    pub fn init(&self, node: &str) -> Result<(), PkiError> {
        if self.ca_cert().exists() {
            return Err(PkiError::Bad(format!(
                "{} exists already: this node is paired or was initialised before",
                self.ca_cert().display()
            )));
        }
        let ca_key = KeyPair::generate().map_err(generate)?;
        let ca = ca_params().self_signed(&ca_key).map_err(generate)?;
        self.write(&self.ca_cert(), ca.pem().as_bytes(), 0o644)?;
        self.write(&self.ca_key(), ca_key.serialize_pem().as_bytes(), 0o600)?;
        let mine = self.issue(node)?;
        self.install(&ca.pem(), &mine)
    }

    /// Signs a certificate for `node` with the cluster CA (only where
    /// `ca.key` is).
    pub fn issue(&self, node: &str) -> Result<NodeCert, PkiError> {
        let ca_key = KeyPair::from_pem(&self.read(&self.ca_key())?).map_err(generate)?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::new(vec![node.to_string()]).map_err(generate)?;
        params.distinguished_name.push(DnType::CommonName, node);
        let cert = params.signed_by(&key, &issuer).map_err(generate)?;
        Ok(NodeCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes the CA certificate and this node's pair (`pair join`).
    pub fn install(&self, ca_pem: &str, mine: &NodeCert) -> Result<(), PkiError> {
        if !self.ca_cert().exists() {
            self.write(&self.ca_cert(), ca_pem.as_bytes(), 0o644)?;
        }
        self.write(&self.node_cert(), mine.cert_pem.as_bytes(), 0o644)?;
        self.write(&self.node_key(), mine.key_pem.as_bytes(), 0o600)
    }

    pub fn read(&self, path: &Path) -> Result<String, PkiError> {
        std::fs::read_to_string(path).map_err(|source| PkiError::File {
            path: path.to_path_buf(),
            source,
        })
    }

    fn write(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
        use std::os::unix::fs::DirBuilderExt;
        let err = |source| PkiError::File {
            path: path.to_path_buf(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(err)?;
        crate::fsutil::write_atomically(path, bytes, mode).map_err(err)
    }

    /// SHA-256 fingerprint of this node's certificate ("sha256:hex").
    pub fn own_fingerprint(&self) -> Result<String, PkiError> {
        let certs = parse_certs(&self.read(&self.node_cert())?)?;
        certs
            .first()
            .map(|c| fingerprint(c.as_ref()))
            .ok_or_else(|| PkiError::Bad("node.pem holds no certificate".into()))
    }

    /// SHA-256 fingerprint of the CA certificate.
    pub fn ca_fingerprint(&self) -> Result<String, PkiError> {
        let certs = parse_certs(&self.read(&self.ca_cert())?)?;
        certs
            .first()
            .map(|c| fingerprint(c.as_ref()))
            .ok_or_else(|| PkiError::Bad("ca.pem holds no certificate".into()))
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, PkiError> {
        let mut roots = RootCertStore::empty();
        for c in parse_certs(&self.read(&self.ca_cert())?)? {
            roots
                .add(c)
                .map_err(|e| PkiError::Bad(format!("ca.pem: {e}")))?;
        }
        Ok(Arc::new(roots))
    }

    fn identity(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let certs = parse_certs(&self.read(&self.node_cert())?)?;
        let key = parse_key(&self.read(&self.node_key())?)?;
        Ok((certs, key))
    }

    /// The link's server side: our certificate; client certificates from
    /// the cluster CA, optional (a joining node has none yet).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(
            self.roots()?,
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Bad(format!("client verifier: {e}")))?;
        let (certs, key) = self.identity()?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Bad(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| PkiError::Bad(format!("node certificate: {e}")))?;
        Ok(Arc::new(config))
    }

    /// The link's client side: trusts only the cluster CA, presents our
    /// certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        let (certs, key) = self.identity()?;
        let config = client_builder(self.roots()?)?
            .with_client_auth_cert(certs, key)
            .map_err(|e| PkiError::Bad(format!("node certificate: {e}")))?;
        Ok(Arc::new(config))
    }
}

/// A client that trusts `ca_pem` only and presents no certificate (the
/// joining node, before it has one).
pub fn join_client_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let mut roots = RootCertStore::empty();
    for c in parse_certs(ca_pem)? {
        roots
            .add(c)
            .map_err(|e| PkiError::Bad(format!("CA certificate: {e}")))?;
    }
    Ok(Arc::new(
        client_builder(Arc::new(roots))?.with_no_client_auth(),
    ))
}

fn client_builder(
    roots: Arc<RootCertStore>,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, PkiError>
{
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| PkiError::Bad(e.to_string()))?
    .with_root_certificates(roots))
}

pub fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Bad(format!("certificate PEM: {e}")))
}

fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::Bad(format!("private key PEM: {e}")))
}

/// "sha256:" + hex of the DER bytes' SHA-256.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_node_gets_a_certificate_from_the_cluster_ca() -> Result<(), PkiError> {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let fa = PairFiles::new(a.path());
        fa.init("node-a")?;
        assert!(fa.init("node-a").is_err(), "init twice is refused");
        let for_b = fa.issue("node-b")?;
        let fb = PairFiles::new(b.path());
        fb.install(&fa.read(&fa.ca_cert())?, &for_b)?;
        assert_ne!(fa.own_fingerprint()?, fb.own_fingerprint()?);
        assert_eq!(fa.ca_fingerprint()?, fb.ca_fingerprint()?);
        fa.server_config()?;
        fb.client_config()?;
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fb.node_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        Ok(())
    }
}
