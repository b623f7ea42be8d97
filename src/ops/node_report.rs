//! Everything this node measures about itself at one moment (`NodeReport`),
//! gathered by the mailbox role's `Monitor` for `/metrics`, the samples and
//! the dashboard.
//!
//! Owns: the `Monitor` (the engine link, the samples, short caches) and the
//! hooks the web stack installs for its own gauges (open HTTPS
//! connections, live webmail sessions) and the mailbox role for the pair
//! link, so `ops` knows nothing of HTTP or replication.
//!
//! Invariants:
//! - Store statistics walk the blob index (`store::stats`), so they are
//!   taken at most once per `STORE_STATS_TTL` (or per `[metrics]
//!   sample_every`, when shorter); certificate expiry is read
//!   at most once per `CERT_TTL`. A scrape never costs more than that.
//! - A part that cannot be measured (engine stopped, store error) is left
//!   out of the report with the reason; the rest is still reported.
//!
//! Reads untrusted input: no.

use std::sync::{Arc, Mutex, OnceLock};

use super::engine_report::{EngineLink, EngineReport};
use super::process::{self, ProcessStats};
use super::samples::{DiskSample, Sample, Samples};
use crate::config::Config;
use crate::store::Store;

const STORE_STATS_TTL: i64 = 30;
const CERT_TTL: i64 = 600;

/// One data directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskReport {
    pub path: String,
    pub bytes: u64,
    pub garbage: u64,
    pub free: Option<u64>,
    pub total: Option<u64>,
}

/// The pair link as this node sees it (R3), when it is paired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairState {
    pub peer_name: String,
    pub peer_addr: String,
    /// Pulling from the peer right now.
    pub connected: bool,
    /// Unix seconds of the last frame from the peer.
    pub last_contact: Option<i64>,
    /// Operations the peer has that this node has not applied yet.
    pub behind: u64,
    pub last_error: Option<String>,
    /// Alerts raised for the link (`replication::alerts`).
    pub alerts: Vec<PairAlert>,
    /// Replication lag (p50, p99) in ms over the last changes applied.
    pub lag_ms: Option<(u64, u64)>,
}

/// An alert about the pair link, active since `since` (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairAlert {
    pub kind: PairAlertKind,
    pub since: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairAlertKind {
    /// The link to the peer is down.
    LinkDown,
    /// This node is this many changes behind the peer.
    Behind { ops: u64 },
}

impl PairAlert {
    /// The label value in `/metrics` and the word in logs.
    pub fn name(&self) -> &'static str {
        match self.kind {
            PairAlertKind::LinkDown => "link_down",
            PairAlertKind::Behind { .. } => "behind",
        }
    }

    /// One line of English for logs and `pair status`.
    pub fn describe(&self) -> String {
        let since = chrono::DateTime::from_timestamp(self.since, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        match self.kind {
            PairAlertKind::LinkDown => format!("the link to the peer is down since {since}"),
            PairAlertKind::Behind { ops } => {
                format!("{ops} changes behind the peer since {since}")
            }
        }
    }
}

/// Asks the replication link for its state; `None` while no peer is known.
pub type PairProbe = Box<dyn Fn() -> Option<PairState> + Send + Sync>;

/// The web stack's gauges, installed once it runs.
pub struct WebGauges {
    pub connections: Box<dyn Fn() -> u64 + Send + Sync>,
    pub sessions: Box<dyn Fn() -> u64 + Send + Sync>,
}

#[derive(Debug, Clone)]
pub struct NodeReport {
    pub at: i64,
    pub node: String,
    /// The engine's own report, or why there is none.
    pub engine: Result<EngineReport, String>,
    pub disks: Result<Vec<DiskReport>, String>,
    pub web_connections: Option<u64>,
    pub webmail_sessions: Option<u64>,
    /// This (the mailbox role's) process.
    pub process: ProcessStats,
    pub pid: u32,
    pub cert_expiry: Option<i64>,
    /// The pair link; `None` when this node is not paired (or no peer yet).
    pub pair: Option<PairState>,
}

impl NodeReport {
    /// The engine's report when it runs in another process than this one.
    pub fn separate_engine(&self) -> Option<&EngineReport> {
        self.engine.as_ref().ok().filter(|e| e.pid != self.pid)
    }

    /// The sample this report makes.
    pub fn sample(&self) -> Sample {
        let engine = self.engine.as_ref().ok();
        let queue = |lane: crate::engine::queue::QueueLane| {
            engine.and_then(|e| e.lanes.iter().find(|l| l.lane == lane).map(|l| l.messages))
        };
        let separate = self.separate_engine();
        let memory = match (self.process.resident_bytes, separate) {
            (Some(mine), Some(e)) => Some(mine + e.process.resident_bytes.unwrap_or(0)),
            (mine, _) => mine,
        };
        Sample {
            at: self.at,
            engine_pid: engine.map(|e| e.pid),
            accepted: engine.map(|e| e.counters.accepted),
            delivered: engine.map(|e| e.counters.delivered),
            deferred: engine.map(|e| e.counters.deferred),
            bounced: engine.map(|e| e.counters.bounced),
            queue_normal: queue(crate::engine::queue::QueueLane::Normal),
            queue_bulk: queue(crate::engine::queue::QueueLane::Bulk),
            disks: self
                .disks
                .as_ref()
                .map(|disks| {
                    disks
                        .iter()
                        .map(|d| DiskSample {
                            path: d.path.clone(),
                            bytes: d.bytes,
                            free: d.free,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            mailbox_pid: self.pid,
            mailbox_cpu: self.process.cpu_seconds,
            engine_cpu: separate.and_then(|e| e.process.cpu_seconds),
            memory,
            smtp_connections: engine.map(|e| e.counters.smtp_connections),
            web_connections: self.web_connections,
            sessions: self.webmail_sessions,
        }
    }
}

/// Measures this node (mailbox role side).
pub struct Monitor {
    config: Arc<Config>,
    store: Arc<Store>,
    engine: EngineLink,
    samples: Samples,
    web: OnceLock<WebGauges>,
    pair: OnceLock<PairProbe>,
    disks: Mutex<Option<(i64, Vec<DiskReport>)>>,
    cert: Mutex<Option<(i64, Option<i64>)>>,
}

impl Monitor {
    pub fn new(config: Arc<Config>, store: Arc<Store>) -> Monitor {
        Monitor {
            engine: EngineLink::new(config.engine_socket()),
            samples: Samples::open(&config.node.data_dir),
            config,
            store,
            web: OnceLock::new(),
            pair: OnceLock::new(),
            disks: Mutex::new(None),
            cert: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn engine(&self) -> &EngineLink {
        &self.engine
    }

    pub fn samples(&self) -> &Samples {
        &self.samples
    }

    /// Installs the web stack's gauges (once; later calls are ignored).
    pub fn set_web_gauges(&self, gauges: WebGauges) {
        let _ = self.web.set(gauges);
    }

    /// Installs the replication link's probe (once; a paired node only).
    pub fn set_pair_probe(&self, probe: PairProbe) {
        let _ = self.pair.set(probe);
    }

    /// Measures everything now (`now` in unix seconds).
    pub fn report(&self, now: i64) -> NodeReport {
        NodeReport {
            at: now,
            node: self.config.node.name.clone(),
            engine: self.engine.report().map_err(|e| e.to_string()),
            disks: self.disks(now),
            web_connections: self.web.get().map(|g| (g.connections)()),
            webmail_sessions: self.web.get().map(|g| (g.sessions)()),
            process: process::current(),
            pid: std::process::id(),
            cert_expiry: self.cert_expiry(now),
            pair: self.pair.get().and_then(|probe| probe()),
        }
    }

    fn disks(&self, now: i64) -> Result<Vec<DiskReport>, String> {
        let mut cache = self.disks.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = STORE_STATS_TTL.min(self.config.metrics.sample_every.as_secs() as i64);
        if let Some((at, disks)) = cache.as_ref() {
            if now - at < ttl && now >= *at {
                return Ok(disks.clone());
            }
        }
        let stats = self.store.stats().map_err(|e| e.to_string())?;
        let disks: Vec<DiskReport> = stats
            .disks
            .iter()
            .map(|d| DiskReport {
                path: d.path.display().to_string(),
                bytes: d.bytes,
                garbage: d.garbage,
                free: d.free,
                total: d.total,
            })
            .collect();
        *cache = Some((now, disks.clone()));
        Ok(disks)
    }

    fn cert_expiry(&self, now: i64) -> Option<i64> {
        let mut cache = self.cert.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, expiry)) = *cache {
            if now - at < CERT_TTL && now >= at {
                return expiry;
            }
        }
        let expiry = super::cert::expiry(&self.config.tls.cert);
        *cache = Some((now, expiry));
        expiry
    }
}
