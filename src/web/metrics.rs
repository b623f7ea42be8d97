//! `GET /metrics`: the node's metrics in the Prometheus text format (O1),
//! for the addresses in `[metrics] allow_from` and, when a token is set,
//! only with `Authorization: Bearer <token>` (RFC 6750 §2.1).
//!
//! Invariants:
//! - The source address is the real client's (from the TLS front), never
//!   a header; it is checked before the token, and both before anything
//!   is measured.
//! - A refused request gets 403 and learns nothing else; the token is
//!   compared in constant time and never logged.
//! - With `[metrics] enabled = false` the path does not exist (404).
//!
//! Reads untrusted input: the Authorization header (only compared).

use std::net::IpAddr;

use super::csrf::constant_time_eq;
use super::http::{Method, Reply, WebRequest};
use crate::config::MetricsConfig;
use crate::ops::exposition::CONTENT_TYPE;
use crate::ops::node_report::Monitor;

pub const PATH: &str = "/metrics";

/// Why a request may not read the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Source,
    Token,
}

/// The access rule (see the module invariants).
pub fn check(
    config: &MetricsConfig,
    client: IpAddr,
    authorization: Option<&str>,
) -> Result<(), Refusal> {
    let client = match client {
        // An IPv4 client on a dual-stack socket is still that IPv4 address.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    };
    let networks = config.networks();
    if !networks.is_empty() && !networks.iter().any(|n| n.contains(&client)) {
        return Err(Refusal::Source);
    }
    if !config.bearer_token.is_empty() {
        let sent = authorization
            .and_then(|h| {
                let (scheme, token) = h.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("Bearer")
                    .then_some(token.trim())
            })
            .unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), config.bearer_token.as_bytes()) {
            return Err(Refusal::Token);
        }
    }
    Ok(())
}

/// Answers a request for `PATH`.
pub fn handle(monitor: &Monitor, req: &WebRequest) -> Reply {
    let config = &monitor.config().metrics;
    let reply = if !config.enabled {
        Reply::text(404, "Metrics are turned off ([metrics] enabled = false).\n")
    } else if !matches!(req.method, Method::Get | Method::Head) {
        Reply::text(405, "Use GET.\n").with_header("Allow", "GET, HEAD")
    } else {
        match check(config, req.client.ip(), req.authorization.as_deref()) {
            Err(refusal) => {
                tracing::warn!(client = %req.client.ip(), ?refusal, "/metrics refused");
                Reply::text(
                    403,
                    "Not allowed: this address or token may not read the metrics. \
                     See [metrics] in appliance.toml.\n",
                )
            }
            Ok(()) => {
                let report = monitor.report(crate::ops::unix_now());
                let mut reply = Reply::text(200, &crate::ops::metrics::render(&report));
                reply.headers = vec![("Content-Type", CONTENT_TYPE.to_string())];
                reply
            }
        }
    };
    reply
        .with_header("Content-Security-Policy", "default-src 'none'")
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow: &[&str], token: &str) -> MetricsConfig {
        MetricsConfig {
            allow_from: allow.iter().map(|s| s.to_string()).collect(),
            bearer_token: token.into(),
            ..MetricsConfig::default()
        }
    }

    #[test]
    fn source_then_token() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let loopback = MetricsConfig::default();
        assert_eq!(check(&loopback, ip("127.0.0.1"), None), Ok(()));
        assert_eq!(check(&loopback, ip("::ffff:127.0.0.1"), None), Ok(()));
        assert_eq!(check(&loopback, ip("::1"), None), Ok(()));
        assert_eq!(check(&loopback, ip("10.0.0.5"), None), Err(Refusal::Source));
        let token = "x".repeat(40);
        let both = config(&["10.0.0.0/24"], &token);
        let bearer = format!("Bearer {token}");
        assert_eq!(check(&both, ip("10.0.0.5"), Some(&bearer)), Ok(()));
        assert_eq!(
            check(&both, ip("10.0.1.5"), Some(&bearer)),
            Err(Refusal::Source)
        );
        assert_eq!(check(&both, ip("10.0.0.5"), None), Err(Refusal::Token));
        assert_eq!(
            check(&both, ip("10.0.0.5"), Some(&format!("Basic {token}"))),
            Err(Refusal::Token)
        );
        assert_eq!(
            check(&both, ip("10.0.0.5"), Some(&format!("bearer {token}x"))),
            Err(Refusal::Token)
        );
        let token_only = config(&[], &token);
        assert_eq!(check(&token_only, ip("192.0.2.1"), Some(&bearer)), Ok(()));
    }
}
