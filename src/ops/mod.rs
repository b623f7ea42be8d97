//! Operations (O1, O3): what the appliance measures about itself and the
//! logs it keeps for the admins.
//!
//! - `counters`: the engine's process-wide counters (messages accepted,
//!   delivered, deferred, bounced) and open SMTP connections.
//! - `process`: this process's CPU seconds and resident memory (`/proc`).
//! - `engine_report`: what the engine tells the mailbox role about itself
//!   over `engine.sock` (counters, queue per lane, process), and the
//!   mailbox role's client for it (`EngineLink`).
//! - `node_report`: everything one node measures at one moment (engine,
//!   store per data directory, web connections, sessions, certificate).
//! - `exposition`: the Prometheus text format; `metrics`: what `/metrics` says.
//! - `samples`, `sampler`: one sample a minute, kept a week in
//!   `<data_dir>/ops/samples.jsonl`, for the console's charts.
//! - `mail_log`: one line per delivery attempt, a file per day.
//! - `retention`: deleting daily log files older than `[logs] keep_days`.
//! - `cert`: the certificate's expiry time.
//!
//! Invariant: nothing here changes mail, the queue or the store; a failure
//! to measure or to log never stops mail (it is logged and the value is
//! left out).

pub mod cert;
pub mod counters;
pub mod engine_report;
pub mod exposition;
pub mod mail_log;
pub mod metrics;
pub mod node_report;
pub mod process;
pub mod retention;
pub mod sampler;
pub mod samples;

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
