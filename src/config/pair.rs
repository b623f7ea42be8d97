//! `[pair]`: the active-active pair's link, written by `campusmail pair
//! init/join` (see `replication`).

use std::net::SocketAddr;

use serde::Deserialize;

use super::{parse_host_port, Config, ConfigDuration, ConfigError};

/// The active-active pair (R3): written by `campusmail pair init/join`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PairConfig {
    /// Where this node's replication link listens ("ip:port"); empty = not paired.
    pub listen: String,
    /// The peer's replication address ("host:port").
    pub peer: String,
    /// The peer's node name (the name in its certificate).
    pub peer_name: String,
    /// SHA-256 fingerprint of the peer's certificate ("sha256:...").
    pub peer_fingerprint: String,
    /// Where this node's engine takes the peer's shadow copies ("ip:port");
    /// empty = the replication link's address with the next port.
    pub engine_listen: String,
    /// The peer engine's shadow address; empty = `peer` with the next port.
    pub engine_peer: String,
    /// How long a `250` waits for the peer to hold its shadow copy before
    /// the message is accepted alone (and the log says so).
    pub shadow_wait: ConfigDuration,
    /// How long the peer's engine must be silent before this node delivers
    /// the shadow copies it holds for it.
    pub shadow_takeover_after: ConfigDuration,
    /// How long the link may be down, or this node far behind, before an
    /// alert is raised (`replication::alerts`).
    pub alert_after: ConfigDuration,
    /// Changes behind the peer that count as far behind.
    pub alert_behind_ops: u64,
}

impl Default for PairConfig {
    fn default() -> Self {
        PairConfig {
            listen: String::new(),
            peer: String::new(),
            peer_name: String::new(),
            peer_fingerprint: String::new(),
            engine_listen: String::new(),
            engine_peer: String::new(),
            shadow_wait: ConfigDuration(std::time::Duration::from_secs(2)),
            shadow_takeover_after: ConfigDuration::secs(600),
            alert_after: ConfigDuration::secs(120),
            alert_behind_ops: 10_000,
        }
    }
}

impl PairConfig {
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// The engine's shadow listener, when this node is paired.
    pub fn engine_listen_addr(&self) -> Option<SocketAddr> {
        if !self.engine_listen.is_empty() {
            return self.engine_listen.parse().ok();
        }
        let link = self.listen_addr()?;
        Some(SocketAddr::new(link.ip(), link.port().checked_add(1)?))
    }

    /// The peer engine's shadow address ("host:port"), when a peer is named.
    pub fn engine_peer_addr(&self) -> Option<String> {
        if !self.engine_peer.is_empty() {
            return Some(self.engine_peer.clone());
        }
        let (host, port) = parse_host_port(&self.peer)?;
        let port = port.checked_add(1)?;
        Some(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }
}

impl Config {
    pub(super) fn validate_pair(&self) -> Result<(), ConfigError> {
        let p = &self.pair;
        if !p.listen.is_empty() && p.listen_addr().is_none() {
            return Err(self.invalid("pair.listen", "must be \"ip:port\", e.g. \"10.0.0.1:2700\""));
        }
        if !p.peer.is_empty() && parse_host_port(&p.peer).is_none() {
            return Err(self.invalid("pair.peer", "must be \"host:port\""));
        }
        if !p.peer.is_empty() && !crate::store::is_valid_node_name(&p.peer_name) {
            return Err(self.invalid("pair.peer_name", "must be the peer's node name"));
        }
        if !p.engine_listen.is_empty() && p.engine_listen.parse::<SocketAddr>().is_err() {
            return Err(self.invalid(
                "pair.engine_listen",
                "must be \"ip:port\", e.g. \"10.0.0.1:2701\"",
            ));
        }
        if !p.engine_peer.is_empty() && parse_host_port(&p.engine_peer).is_none() {
            return Err(self.invalid("pair.engine_peer", "must be \"host:port\""));
        }
        if p.alert_behind_ops == 0 {
            return Err(self.invalid("pair.alert_behind_ops", "must be at least 1"));
        }
        if p.shadow_takeover_after.0 < std::time::Duration::from_secs(1) {
            return Err(self.invalid("pair.shadow_takeover_after", "must be at least 1s"));
        }
        if !p.peer_fingerprint.is_empty() && !p.peer_fingerprint.starts_with("sha256:") {
            return Err(self.invalid("pair.peer_fingerprint", "must start with \"sha256:\""));
        }
        Ok(())
    }
}
