//! The active-active pair (R3): each node streams its store's operation
//! log, with the blobs the ops name, to the peer over mutual TLS, and
//! applies the peer's log idempotently.
//!
//! Shape: pull, both ways. Each node runs a link server (`server.rs`) that
//! streams its log to whoever holds a cluster certificate, and a puller
//! (`client.rs`) that connects to the peer's server, asks for every op past
//! what it already has (its own log says how far: ops of one origin arrive
//! in order), applies them, and follows the peer's log from then on. After a
//! partition or downtime the puller simply resumes from its log's last
//! positions: no full copy, nothing to acknowledge. A new or wiped node
//! instead asks for a snapshot of the peer's state and then the ops after
//! it (`seeding.rs`). `pki.rs` makes the
//! cluster CA and node certificates; `join.rs` brings a second node in with
//! a one-time token; `wire.rs` is the frame format.
//!
//! Owns: `<data_dir>/pair/` (certificates, pending join token), the link
//! listener (`[pair] listen`), `pair.sock` (status and verify commands).
//!
//! Invariants:
//! - nothing but a certificate from the cluster CA (and, once known, only
//!   the peer's own) can pull ops or ask for a digest; the only request
//!   without one is a join with a valid, unexpired, one-time secret;
//! - an op is applied only after the blob it names is stored;
//! - replication never blocks local writes: ops are read from the log
//!   after they commit.
//!
//! The engines' shadow copies of accepted mail travel on their own link
//! (`engine::shadow`), which uses this module's certificates and framing.

pub mod admin;
pub mod alerts;
pub mod client;
pub mod join;
pub mod pki;
pub mod seeding;
pub mod server;
pub mod status;
pub mod wire;

#[cfg(test)]
mod convergence_tests;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
use crate::store::{ReplicationOp, Store};
use pki::PairFiles;
use status::LinkStatus;

/// The peer as appliance.toml (or a join just now) names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: String,
    pub name: String,
    pub fingerprint: String,
}

pub struct Replication {
    pub node: String,
    pub store: Arc<Store>,
    pub files: PairFiles,
    config_path: PathBuf,
    peer: RwLock<Option<Peer>>,
    pub status: Mutex<LinkStatus>,
    /// Alerts raised for the link now (`alerts`).
    pub alerts: Mutex<Vec<crate::ops::node_report::PairAlert>>,
    observers: RwLock<Vec<Observer>>,
}

/// Told about every op from the peer that changed something here.
pub type Observer = Box<dyn Fn(&ReplicationOp) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("[pair] listen is set but this node has no pair certificates in {0}; run `campusmail pair init` (first node) or `campusmail pair join` (second node)")]
    NotPaired(PathBuf),
    #[error("cannot listen for the peer on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
}

impl Replication {
    /// Calls `f` with each op applied from the peer (e.g. the web ends a
    /// session when the user logs in on the other node).
    pub fn on_remote_op(&self, f: Observer) {
        if let Ok(mut o) = self.observers.write() {
            o.push(f);
        }
    }

    fn notify(&self, op: &ReplicationOp) {
        if let Ok(observers) = self.observers.read() {
            for f in observers.iter() {
                f(op);
            }
        }
    }

    pub fn peer(&self) -> Option<Peer> {
        self.peer.read().ok().and_then(|p| p.clone())
    }

    /// Records the peer (after a join) in memory and in appliance.toml.
    pub fn set_peer(&self, peer: Peer) -> std::io::Result<()> {
        crate::config::edit::set_strings(
            &self.config_path,
            "pair",
            &[
                ("peer", &peer.addr),
                ("peer_name", &peer.name),
                ("peer_fingerprint", &peer.fingerprint),
            ],
        )?;
        if let Ok(mut p) = self.peer.write() {
            *p = Some(peer);
        }
        Ok(())
    }
}

/// Starts the link server and the puller when `[pair] listen` is set.
pub fn start(
    config: &Config,
    store: Arc<Store>,
) -> Result<Option<Arc<Replication>>, ReplicationError> {
    let Some(listen) = config.pair.listen_addr() else {
        return Ok(None);
    };
    let files = PairFiles::new(&config.node.data_dir);
    if !files.exists() {
        return Err(ReplicationError::NotPaired(files.dir.clone()));
    }
    let tls = files.server_config()?;
    let listener = TcpListener::bind(listen).map_err(|source| ReplicationError::Listen {
        addr: listen.to_string(),
        source,
    })?;
    let p = &config.pair;
    let peer = (!p.peer.is_empty()).then(|| Peer {
        addr: p.peer.clone(),
        name: p.peer_name.clone(),
        fingerprint: p.peer_fingerprint.clone(),
    });
    let rep = Arc::new(Replication {
        node: config.node.name.clone(),
        store,
        files,
        config_path: config.source.clone(),
        peer: RwLock::new(peer),
        status: Mutex::new(LinkStatus::default()),
        alerts: Mutex::new(Vec::new()),
        observers: RwLock::new(Vec::new()),
    });
    let serving = rep.clone();
    std::thread::Builder::new()
        .name("pair-server".into())
        .spawn(move || server::serve(serving, listener, tls))
        .map_err(|source| ReplicationError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let pulling = rep.clone();
    std::thread::Builder::new()
        .name("pair-puller".into())
        .spawn(move || client::run(pulling))
        .map_err(|source| ReplicationError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let watching = rep.clone();
    let rules = alerts::AlertRules {
        after_secs: i64::try_from(p.alert_after.as_secs()).unwrap_or(i64::MAX),
        behind_ops: p.alert_behind_ops,
    };
    std::thread::Builder::new()
        .name("pair-alerts".into())
        .spawn(move || alerts::run(watching, rules))
        .map_err(|source| ReplicationError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    tracing::info!(%listen, "replication link listening");
    Ok(Some(rep))
}
