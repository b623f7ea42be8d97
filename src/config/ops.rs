//! `[metrics]` (who may read `/metrics`) and `[logs]` (how long the mail
//! log and the audit log are kept), see `ops`.
//!
//! Invariant: `/metrics` is never open to everyone by accident: an empty
//! allow-list with no token is refused at load, and the default is
//! loopback only.

use serde::Deserialize;

use super::{parse_network, Config, ConfigDuration, ConfigError};

/// Shortest bearer token accepted (a token is a password for a machine).
pub const MIN_TOKEN_CHARS: usize = 32;

/// Prometheus `/metrics` on the HTTPS port (O1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Client addresses or ranges that may read it; empty = any address
    /// (then `bearer_token` is required).
    pub allow_from: Vec<String>,
    /// When set, a request must also carry `Authorization: Bearer <token>`.
    pub bearer_token: String,
    /// How often the console's charts take a sample of this node.
    pub sample_every: ConfigDuration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            allow_from: vec!["127.0.0.1".into(), "::1".into()],
            bearer_token: String::new(),
            sample_every: ConfigDuration::secs(60),
        }
    }
}

impl MetricsConfig {
    /// The parsed allow-list (validated at load, so nothing is dropped).
    pub fn networks(&self) -> Vec<ipnet::IpNet> {
        self.allow_from
            .iter()
            .filter_map(|n| parse_network(n))
            .collect()
    }
}

/// Retention of the daily log files (O3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Days a mail-log or audit-log file is kept after its day ended.
    pub keep_days: u32,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig { keep_days: 400 }
    }
}

impl Config {
    pub(super) fn validate_ops(&self) -> Result<(), ConfigError> {
        let m = &self.metrics;
        for net in &m.allow_from {
            if parse_network(net).is_none() {
                return Err(self.invalid(
                    "metrics.allow_from",
                    format!("{net:?} is not an IP address or range such as \"10.0.0.0/24\""),
                ));
            }
        }
        let token = &m.bearer_token;
        if !token.is_empty()
            && (token.chars().count() < MIN_TOKEN_CHARS
                || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(self.invalid(
                "metrics.bearer_token",
                format!(
                    "must be at least {MIN_TOKEN_CHARS} visible ASCII characters without spaces \
                     (e.g. the output of `openssl rand -hex 32`), or empty"
                ),
            ));
        }
        if m.enabled && m.allow_from.is_empty() && token.is_empty() {
            return Err(self.invalid(
                "metrics.allow_from",
                "is empty and no metrics.bearer_token is set, which would let anyone read \
                 /metrics: list the Prometheus server's address, set a token, or set \
                 metrics.enabled = false",
            ));
        }
        if !(1..=3600).contains(&m.sample_every.as_secs()) {
            return Err(self.invalid(
                "metrics.sample_every",
                "must be between \"1s\" and \"1h\" (the default \"1m\" is right for the charts)",
            ));
        }
        let keep = self.logs.keep_days;
        if !(1..=36_500).contains(&keep) {
            return Err(self.invalid(
                "logs.keep_days",
                "must be between 1 and 36500 (the issue asks for at least 365)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;

    fn parse(extra: &str) -> Result<Config, super::ConfigError> {
        let text = format!("[node]\nname=\"a\"\nhostname=\"m.x.test\"\n{extra}");
        Config::from_text(Path::new("/etc/campusmail/appliance.toml"), &text)
    }

    #[test]
    fn defaults_are_loopback_only_and_400_days() {
        let c = parse("").unwrap();
        assert!(c.metrics.enabled);
        let nets = c.metrics.networks();
        assert!(nets
            .iter()
            .any(|n| n.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap())));
        assert!(!nets
            .iter()
            .any(|n| n.contains(&"10.0.0.1".parse::<std::net::IpAddr>().unwrap())));
        assert_eq!(c.logs.keep_days, 400);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("[metrics]\nallow_from=[\"nope\"]\n", "metrics.allow_from"),
            ("[metrics]\nallow_from=[]\n", "metrics.allow_from"),
            (
                "[metrics]\nbearer_token=\"short\"\n",
                "metrics.bearer_token",
            ),
            (
                "[metrics]\nbearer_token=\"has a space in it and is long enough ok\"\n",
                "metrics.bearer_token",
            ),
            ("[logs]\nkeep_days=0\n", "logs.keep_days"),
            ("[metrics]\nsample_every=\"2h\"\n", "metrics.sample_every"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let token = "t".repeat(40);
        let c = parse(&format!(
            "[metrics]\nallow_from=[]\nbearer_token=\"{token}\"\n"
        ))
        .unwrap();
        assert!(c.metrics.networks().is_empty());
        assert!(parse("[metrics]\nenabled=false\nallow_from=[]\n").is_ok());
    }
}
