//! The appliance configuration: `appliance.toml`.
//!
//! Owns: the schema of `appliance.toml`, its defaults, where the file is found
//! (`--config`, else `$CAMPUSMAIL_CONFIG`, else `./campusmail-data/appliance.toml`)
//! and the commented default file written on first run (`template.rs`).
//!
//! Invariants:
//! - Unknown keys are an error (`deny_unknown_fields`), so a typo never
//!   silently falls back to a default.
//! - Every validation error names the key and says what is allowed.
//! - Relative paths in the file are relative to the directory holding the
//!   file, never to the process's working directory; `Config::load` resolves
//!   them once, so the rest of the code only sees absolute paths.
//!
//! Reads untrusted input: only the admin's own file.

mod duration;
pub mod edit;
mod ops;
mod pair;
mod paths;
mod size;
mod store;
mod template;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use duration::{parse_duration, ConfigDuration};
pub use ops::{LogsConfig, MetricsConfig};
pub use pair::PairConfig;
pub use size::{parse_size, ConfigSize};
pub use store::{DataDirConfig, StoreConfig};
pub use template::default_config_text;

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "CAMPUSMAIL_CONFIG";
/// Where the embedded default keeps its data and configuration.
pub const DEFAULT_DATA_DIR: &str = "campusmail-data";
/// File name of the configuration inside the data folder.
pub const CONFIG_FILE_NAME: &str = "appliance.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("configuration key `{key}` in {path}: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// The whole `appliance.toml`, with paths resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub mailbox: MailboxConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub pair: PairConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub logs: LogsConfig,
    /// The file this configuration came from (set by `load`).
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's name; the origin of every operation it logs.
    pub name: String,
    /// Host name announced in SMTP greetings and Received: headers.
    pub hostname: String,
    /// Folder holding the spool, store, directory and keys.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// MX: mail from other servers (port 25 in production).
    pub smtp_listen: SocketAddr,
    /// Submission with STARTTLS (port 587 in production).
    pub submission_listen: SocketAddr,
    /// Submission over implicit TLS (port 465 in production).
    pub submissions_listen: SocketAddr,
    /// Where the mailbox role's LMTP server listens.
    pub lmtp_target: SocketAddr,
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    /// Longest text line accepted inside DATA, CRLF included (RFC 5321 §4.5.3.1.6
    /// sets 1000 as the minimum a server must accept).
    pub max_line_bytes: usize,
    /// Protocol errors after which a session is closed with 421.
    pub max_errors: u32,
    /// Seconds a client may stay silent before the session is closed.
    pub idle_timeout_secs: u64,
}

/// The queue's two lanes (R4) and its retry schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Wait before the first retry of a temporary failure; later retries
    /// back off, doubling up to one hour.
    pub retry_initial: ConfigDuration,
    /// How long a message may wait before it is returned to its sender.
    pub lifetime: ConfigDuration,
    /// After this long undelivered, the sender is told once that delivery
    /// is delayed (RFC 3464 "delayed").
    pub delay_notice_after: ConfigDuration,
    /// Messages with more recipients than this go to the bulk lane.
    pub bulk_recipient_threshold: usize,
    /// Senders (envelope or login addresses) whose mail always goes to the bulk lane.
    pub bulk_senders: Vec<String>,
    /// Deliveries in flight at once in the normal lane.
    pub normal_workers: usize,
    /// Deliveries in flight at once in the bulk lane.
    pub bulk_workers: usize,
    /// Connections at once to one destination from the normal lane.
    pub normal_per_destination: usize,
    /// Connections at once to one destination from the bulk lane.
    pub bulk_per_destination: usize,
    /// Time allowed to connect to a remote server.
    pub connect_timeout: ConfigDuration,
    /// Time allowed for a remote server's reply to one command (RFC 5321
    /// §4.5.3.2 suggests 5 minutes).
    pub command_timeout: ConfigDuration,
}

/// Mail authentication (R7): SPF, DKIM and DMARC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Check SPF, DKIM and DMARC on mail from other servers (the MX port).
    pub verify_inbound: bool,
    /// Act on the sender domain's DMARC policy when DMARC fails: p=reject
    /// refuses the message (550 5.7.1), p=quarantine files it into Junk.
    pub enforce_dmarc: bool,
    /// Sender domains whose DMARC policy is only reported, never enforced
    /// (e.g. a partner whose records are known to be wrong).
    pub dmarc_monitor_only: Vec<String>,
    /// Upstream servers (IP addresses or CIDR ranges) whose mail is taken as
    /// already judged: the campus spam appliance, Google's outbound servers.
    pub trusted_relays: Vec<String>,
    /// DKIM-sign mail that users send from our domains.
    pub dkim_sign: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            verify_inbound: true,
            enforce_dmarc: true,
            dmarc_monitor_only: Vec::new(),
            trusted_relays: Vec::new(),
            dkim_sign: true,
        }
    }
}

impl AuthConfig {
    /// True when `ip` is one of the trusted relays.
    pub fn is_trusted_relay(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_relays
            .iter()
            .filter_map(|r| parse_network(r))
            .any(|net| net.contains(&ip))
    }
}

/// "192.0.2.7", "192.0.2.0/24", "2001:db8::/32".
pub fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// Where remote mail goes, decided before any DNS lookup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Send all remote mail through this server ("host:port") instead of
    /// looking up MX records; empty for direct delivery.
    pub relay_host: String,
    /// Per-domain destinations ("domain" = "host:port"); they win over
    /// `relay_host` and MX records.
    pub transports: BTreeMap<String, String>,
    /// DNS servers to ask ("ip:port"); empty means the system's resolv.conf.
    pub nameservers: Vec<SocketAddr>,
    /// Port for direct delivery to MX hosts (25; tests use another).
    pub mx_port: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailboxConfig {
    /// LMTP server the engine delivers local mail to.
    pub lmtp_listen: SocketAddr,
    /// Webmail and console over HTTPS.
    pub https_listen: SocketAddr,
    /// Plain HTTP: only redirects to HTTPS.
    pub http_listen: SocketAddr,
    /// The address users type in the browser (used for HTTP redirects).
    pub public_url: String,
    /// Minutes of inactivity after which a webmail session ends.
    pub session_idle_minutes: u64,
    /// Messages per page in the message list.
    pub page_size: usize,
    /// Language of pages when the browser does not ask: "ko" or "en".
    pub default_language: String,
    /// Mailbox size for users without a quota of their own; 0 = no limit.
    pub default_quota: ConfigSize,
    /// Messages per mailbox for users without a limit of their own; 0 = none.
    pub default_quota_messages: u64,
    /// Mail in Trash longer than this is deleted for good ("0d" = never).
    pub purge_trash_after: ConfigDuration,
    /// Mail in Junk longer than this is deleted for good ("0d" = never).
    pub purge_junk_after: ConfigDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; made self-signed on first run if missing.
    pub cert: PathBuf,
    /// PEM private key; made on first run if missing.
    pub key: PathBuf,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".")
}

fn addr(s: &str) -> SocketAddr {
    // ok: only called on the literal defaults below.
    s.parse().expect("literal default socket address")
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            smtp_listen: addr("127.0.0.1:2525"),
            submission_listen: addr("127.0.0.1:2587"),
            submissions_listen: addr("127.0.0.1:2465"),
            lmtp_target: addr("127.0.0.1:2424"),
            max_message_bytes: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_line_bytes: 4096,
            max_errors: 10,
            idle_timeout_secs: 300,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            retry_initial: ConfigDuration::secs(60),
            lifetime: ConfigDuration::secs(5 * 86_400),
            delay_notice_after: ConfigDuration::secs(4 * 3600),
            bulk_recipient_threshold: 100,
            bulk_senders: Vec::new(),
            normal_workers: 32,
            bulk_workers: 4,
            normal_per_destination: 8,
            bulk_per_destination: 2,
            connect_timeout: ConfigDuration::secs(30),
            command_timeout: ConfigDuration::secs(300),
        }
    }
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            relay_host: String::new(),
            transports: BTreeMap::new(),
            nameservers: Vec::new(),
            mx_port: 25,
        }
    }
}

impl Default for MailboxConfig {
    fn default() -> Self {
        MailboxConfig {
            lmtp_listen: addr("127.0.0.1:2424"),
            https_listen: addr("127.0.0.1:8443"),
            http_listen: addr("127.0.0.1:8080"),
            public_url: "https://127.0.0.1:8443".into(),
            session_idle_minutes: 60,
            page_size: 50,
            default_language: "ko".into(),
            default_quota: ConfigSize(0),
            default_quota_messages: 0,
            purge_trash_after: ConfigDuration::secs(30 * 86_400),
            purge_junk_after: ConfigDuration::secs(30 * 86_400),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: PathBuf::from("tls/cert.pem"),
            key: PathBuf::from("tls/key.pem"),
        }
    }
}

impl Config {
    /// Where the configuration is, by the one rule every command follows.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        if let Some(p) = std::env::var_os(CONFIG_ENV) {
            if !p.is_empty() {
                return PathBuf::from(p);
            }
        }
        Path::new(DEFAULT_DATA_DIR).join(CONFIG_FILE_NAME)
    }

    /// Reads, parses, resolves and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(path, &text)
    }

    pub fn from_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        config.source = path.to_path_buf();
        config.node.data_dir = normalize(&base.join(&config.node.data_dir));
        config.tls.cert = config.node.data_dir.join(&config.tls.cert);
        config.tls.key = config.node.data_dir.join(&config.tls.key);
        for d in &mut config.store.data_dirs {
            d.path = normalize(&config.node.data_dir.join(&d.path));
        }
        config.validate()?;
        Ok(config)
    }

    fn invalid(&self, key: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.clone(),
            key,
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !crate::store::is_valid_node_name(&self.node.name) {
            return Err(self.invalid(
                "node.name",
                "must be 1-63 lower-case letters, digits, '-' or '.', starting with a letter or digit (e.g. \"node-a\")",
            ));
        }
        if !crate::directory::address::is_valid_domain(&self.node.hostname) {
            return Err(self.invalid(
                "node.hostname",
                "must be a fully qualified host name such as \"mail.campus.ac.kr\"",
            ));
        }
        let e = &self.engine;
        if e.max_message_bytes < 1024 {
            return Err(self.invalid("engine.max_message_bytes", "must be at least 1024"));
        }
        if e.max_recipients == 0 {
            return Err(self.invalid("engine.max_recipients", "must be at least 1"));
        }
        // RFC 5321 §4.5.3.1.6: a server must accept text lines of 1000 octets.
        if e.max_line_bytes < 1000 {
            return Err(self.invalid(
                "engine.max_line_bytes",
                "must be at least 1000 (RFC 5321 §4.5.3.1.6)",
            ));
        }
        if e.max_errors == 0 {
            return Err(self.invalid("engine.max_errors", "must be at least 1"));
        }
        if e.idle_timeout_secs < 5 {
            return Err(self.invalid("engine.idle_timeout_secs", "must be at least 5"));
        }
        self.validate_queue()?;
        self.validate_routing()?;
        self.validate_store()?;
        self.validate_pair()?;
        self.validate_ops()?;
        for relay in &self.auth.trusted_relays {
            if parse_network(relay).is_none() {
                return Err(self.invalid(
                    "auth.trusted_relays",
                    format!("{relay:?} is not an IP address or range such as \"192.0.2.0/24\""),
                ));
            }
        }
        let m = &self.mailbox;
        if !(m.public_url.starts_with("https://") || m.public_url.starts_with("http://")) {
            return Err(self.invalid(
                "mailbox.public_url",
                "must start with https:// (e.g. \"https://mail.campus.ac.kr\")",
            ));
        }
        if m.session_idle_minutes == 0 {
            return Err(self.invalid("mailbox.session_idle_minutes", "must be at least 1"));
        }
        if m.page_size == 0 || m.page_size > 500 {
            return Err(self.invalid("mailbox.page_size", "must be between 1 and 500"));
        }
        if m.default_language != "ko" && m.default_language != "en" {
            return Err(self.invalid("mailbox.default_language", "must be \"ko\" or \"en\""));
        }
        Ok(())
    }

    fn validate_queue(&self) -> Result<(), ConfigError> {
        let q = &self.queue;
        if q.retry_initial.as_secs() == 0 {
            return Err(self.invalid("queue.retry_initial", "must be at least \"1s\""));
        }
        if q.lifetime < q.retry_initial {
            return Err(self.invalid("queue.lifetime", "must be longer than queue.retry_initial"));
        }
        if q.bulk_recipient_threshold == 0 {
            return Err(self.invalid("queue.bulk_recipient_threshold", "must be at least 1"));
        }
        for (key, n) in [
            ("queue.normal_workers", q.normal_workers),
            ("queue.bulk_workers", q.bulk_workers),
            ("queue.normal_per_destination", q.normal_per_destination),
            ("queue.bulk_per_destination", q.bulk_per_destination),
        ] {
            if n == 0 || n > 10_000 {
                return Err(self.invalid(key, "must be between 1 and 10000"));
            }
        }
        if q.connect_timeout.as_secs() == 0 || q.command_timeout.as_secs() == 0 {
            return Err(self.invalid("queue.connect_timeout", "timeouts must be at least \"1s\""));
        }
        for sender in &q.bulk_senders {
            if crate::directory::address::normalize_address(sender).is_none() {
                return Err(self.invalid(
                    "queue.bulk_senders",
                    format!("{sender:?} is not a mail address"),
                ));
            }
        }
        Ok(())
    }

    fn validate_routing(&self) -> Result<(), ConfigError> {
        let r = &self.routing;
        if !r.relay_host.is_empty() && parse_host_port(&r.relay_host).is_none() {
            return Err(self.invalid(
                "routing.relay_host",
                "must be \"host:port\" (e.g. \"smtp.campus.ac.kr:25\") or empty",
            ));
        }
        for (domain, target) in &r.transports {
            if !crate::directory::address::is_valid_domain(&domain.to_ascii_lowercase()) {
                return Err(self.invalid(
                    "routing.transports",
                    format!("{domain:?} is not a domain name"),
                ));
            }
            if parse_host_port(target).is_none() {
                return Err(self.invalid(
                    "routing.transports",
                    format!("{domain} = {target:?}: the destination must be \"host:port\""),
                ));
            }
        }
        if r.mx_port == 0 {
            return Err(self.invalid("routing.mx_port", "must be a port number (25)"));
        }
        Ok(())
    }
}

/// Splits "host:port" (or "[v6]:port"); `None` when either part is missing.
pub fn parse_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok()?;
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// Removes `.` components so printed paths read cleanly.
fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests;
