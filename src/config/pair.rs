//! `[pair]`: the active-active pair's link, written by `campusmail pair
//! init/join` (see `replication`).

use std::net::SocketAddr;

use serde::Deserialize;

use super::{parse_host_port, Config, ConfigError};

/// The active-active pair (R3): written by `campusmail pair init/join`.
#[derive(Debug, Clone, Default, Deserialize)]
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
}

impl PairConfig {
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
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
        if !p.peer_fingerprint.is_empty() && !p.peer_fingerprint.starts_with("sha256:") {
            return Err(self.invalid("pair.peer_fingerprint", "must start with \"sha256:\""));
        }
        Ok(())
    }
}
