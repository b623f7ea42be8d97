//! Bringing the second node in: `pair init` on the first node makes a
//! one-time join token; `pair join TOKEN` on the second node uses it to get
//! a certificate from the first node's cluster CA over TLS.
//!
//! The token carries the first node's link address and name, the cluster
//! CA certificate (so the joining node can check whom it talks to before
//! sending the secret) and a random secret. The first node keeps only the
//! secret's BLAKE3 hash and an expiry, in `pair/join.json`.
//!
//! Invariants:
//! - a token works once: `join.json` is removed before the certificate is
//!   issued; an expired or wrong secret is refused and changes nothing;
//! - the CA key never leaves the first node: it signs the new node's
//!   certificate and sends certificate and key over the TLS connection;
//! - both appliance.toml files name each other afterwards (address, name,
//!   certificate fingerprint).

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use serde::{Deserialize, Serialize};

use super::pki::{self, NodeCert, PairFiles};
use super::wire::{self, Frame, WireError};
use super::{Peer, Replication};
use crate::config::Config;

/// How long a join token stays valid.
pub const TOKEN_LIFETIME_SECS: i64 = 24 * 3600;

#[derive(Serialize, Deserialize)]
struct Token {
    addr: String,
    name: String,
    ca_pem: String,
    secret: String,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    secret_hash: String,
    expires_at: i64,
}

fn pending_path(files: &PairFiles) -> std::path::PathBuf {
    files.dir.join("join.json")
}

/// Makes a new one-time token for the node configured in `config` (which
/// must hold the cluster CA key). Replaces any earlier unused token.
pub fn make_token(config: &Config) -> anyhow::Result<String> {
    let files = PairFiles::new(&config.node.data_dir);
    if !files.ca_key().exists() {
        anyhow::bail!(
            "this node has no cluster CA key ({}); make tokens on the node where `campusmail pair init` ran",
            files.ca_key().display()
        );
    }
    if config.pair.listen.is_empty() {
        anyhow::bail!("[pair] listen is empty; run `campusmail pair init --listen ADDR` first");
    }
    let secret: [u8; 32] = rand::random();
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let pending = Pending {
        secret_hash: blake3::hash(secret.as_bytes()).to_hex().to_string(),
        expires_at: chrono::Utc::now().timestamp() + TOKEN_LIFETIME_SECS,
    };
    crate::fsutil::write_atomically(&pending_path(&files), &serde_json::to_vec(&pending)?, 0o600)?;
    let token = Token {
        addr: config.pair.listen.clone(),
        name: config.node.name.clone(),
        ca_pem: files.read(&files.ca_cert())?,
        secret,
    };
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token)?))
}

/// Server side: checks the secret, spends the token, issues the joining
/// node's certificate and records it as our peer.
pub fn answer<S: std::io::Read + std::io::Write>(
    rep: &Replication,
    tls: &mut S,
    secret: &str,
    node: &str,
    listen: &str,
) -> Result<(), WireError> {
    match admit(rep, secret, node, listen) {
        Ok(joined) => {
            wire::write(tls, &joined, None)?;
            tls.flush()?;
            tracing::info!(peer = %node, %listen, "a node joined the pair");
            Ok(())
        }
        Err(reason) => {
            tracing::warn!(peer = %node, %reason, "join refused");
            wire::write(
                tls,
                &Frame::Refused {
                    reason: reason.clone(),
                },
                None,
            )?;
            tls.flush()?;
            Err(WireError::Bad(reason))
        }
    }
}

fn admit(rep: &Replication, secret: &str, node: &str, listen: &str) -> Result<Frame, String> {
    let path = pending_path(&rep.files);
    let pending: Pending = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("no join token is pending here (make one with `campusmail pair token`)")?;
    let given = blake3::hash(secret.as_bytes());
    let expected = blake3::Hash::from_hex(&pending.secret_hash)
        .map_err(|_| "the pending join token is damaged; make a new one")?;
    // blake3::Hash compares in constant time.
    if given != expected {
        return Err("wrong join secret".into());
    }
    if chrono::Utc::now().timestamp() > pending.expires_at {
        return Err(
            "the join token has expired; make a new one with `campusmail pair token`".into(),
        );
    }
    if !crate::store::is_valid_node_name(node) || node == rep.node {
        return Err(format!(
            "the joining node's name {node:?} must be a valid node name different from {}",
            rep.node
        ));
    }
    if crate::config::parse_host_port(listen).is_none() {
        return Err(format!(
            "the joining node's link address {listen:?} is not host:port"
        ));
    }
    // One use only: spend the token before anything is issued.
    std::fs::remove_file(&path).map_err(|e| format!("cannot spend the join token: {e}"))?;
    let issued = rep.files.issue(node).map_err(|e| e.to_string())?;
    let their_fp = pki::parse_certs(&issued.cert_pem)
        .ok()
        .and_then(|c| c.first().map(|c| pki::fingerprint(c.as_ref())))
        .ok_or("the issued certificate cannot be read back")?;
    rep.set_peer(Peer {
        addr: listen.to_string(),
        name: node.to_string(),
        fingerprint: their_fp,
    })
    .map_err(|e| format!("cannot record the peer in appliance.toml: {e}"))?;
    Ok(Frame::Joined {
        ca_pem: rep
            .files
            .read(&rep.files.ca_cert())
            .map_err(|e| e.to_string())?,
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
        node: rep.node.clone(),
        fingerprint: rep.files.own_fingerprint().map_err(|e| e.to_string())?,
    })
}

/// Client side (`pair join`): joins the node named in `token`, writes our
/// certificates and both sides' names into `config`'s appliance.toml.
pub fn join(config: &Config, token: &str, listen: &str) -> anyhow::Result<String> {
    if crate::config::parse_host_port(listen).is_none() {
        anyhow::bail!("--listen must be ip:port, e.g. 10.0.0.2:2700");
    }
    let files = PairFiles::new(&config.node.data_dir);
    if files.node_cert().exists() {
        anyhow::bail!(
            "this node already has pair certificates in {}",
            files.dir.display()
        );
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| {
            anyhow::anyhow!("that is not a join token (copy the whole line `pair init` printed)")
        })?;
    let token: Token =
        serde_json::from_slice(&bytes).map_err(|_| anyhow::anyhow!("that is not a join token"))?;
    let addr = token
        .addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{} does not resolve", token.addr))?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| {
        anyhow::anyhow!(
            "cannot reach {} ({e}); is campusmail running there?",
            token.addr
        )
    })?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let tls_config = pki::join_client_config(&token.ca_pem)?;
    let conn = ClientConnection::new(tls_config, ServerName::try_from(token.name.clone())?)?;
    let mut tls = StreamOwned::new(conn, tcp);
    wire::write(
        &mut tls,
        &Frame::Join {
            secret: token.secret.clone(),
            node: config.node.name.clone(),
            listen: listen.to_string(),
        },
        None,
    )?;
    tls.flush()?;
    let (ca_pem, cert_pem, key_pem, node, fingerprint) = match wire::read(&mut tls)? {
        Frame::Joined {
            ca_pem,
            cert_pem,
            key_pem,
            node,
            fingerprint,
        } => (ca_pem, cert_pem, key_pem, node, fingerprint),
        Frame::Refused { reason } => anyhow::bail!("{} refused the join: {reason}", token.name),
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    files.install(&ca_pem, &NodeCert { cert_pem, key_pem })?;
    crate::config::edit::set_strings(
        &config.source,
        "pair",
        &[
            ("listen", listen),
            ("peer", &token.addr),
            ("peer_name", &node),
            ("peer_fingerprint", &fingerprint),
        ],
    )?;
    Ok(format!(
        "joined {node} at {}; this node's link listens on {listen}. Start (or restart) campusmail here; `campusmail pair status` shows the link.\n",
        token.addr
    ))
}
