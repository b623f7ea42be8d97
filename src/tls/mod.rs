//! TLS material shared by SMTP (STARTTLS, implicit TLS) and HTTPS.
//!
//! Owns: the certificate and key files named in `[tls]`; on first run it makes
//! a self-signed pair with rcgen so the appliance starts with TLS everywhere a
//! password travels.
//!
//! Invariants:
//! - One rustls version, one `ServerConfig`, for every listener of a role.
//! - The private key file is written owner-only (0600) and never logged.
//! - A broken certificate or key stops the start with a message naming the
//!   file; the appliance never falls back to plain text.
//!
//! `pinned`: the client side, trusting exactly this certificate (the
//! webmail's submissions to the engine).

pub mod pinned;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the TLS certificate {path}: {message} (set [tls] cert in appliance.toml to a PEM certificate chain)")]
    Cert { path: String, message: String },
    #[error("cannot read the TLS private key {path}: {message} (set [tls] key in appliance.toml to a PEM private key)")]
    Key { path: String, message: String },
    #[error("the TLS certificate and key do not fit together: {0}")]
    Mismatch(String),
}

/// Makes a self-signed certificate for `hostname` (and the loopback names)
/// when the configured files are missing. Returns true when it made one.
pub fn ensure_certificate(config: &Config) -> Result<bool, TlsError> {
    if config.tls.cert.exists() && config.tls.key.exists() {
        return Ok(false);
    }
    let names = vec![
        config.node.hostname.clone(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_file(&config.tls.cert, made.cert.pem().as_bytes(), 0o644)?;
    write_file(
        &config.tls.key,
        made.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    Ok(true)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| TlsError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

/// Loads the configured certificate and key into a rustls server config.
pub fn server_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_path = config.tls.cert.display().to_string();
    let key_path = config.tls.key.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.tls.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert_path.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert_path,
            message: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&config.tls.key).map_err(|e| TlsError::Key {
        path: key_path,
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    Ok(Arc::new(server))
}
