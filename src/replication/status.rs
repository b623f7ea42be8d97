//! What `campusmail pair status` (and later /metrics and the console) show:
//! whether the link to the peer is up, since when, how far behind we are,
//! and the last error; and `pair verify`, comparing both nodes' digests.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::Replication;

#[derive(Clone, Debug, Default)]
pub struct LinkStatus {
    /// Pulling from the peer right now.
    pub connected: bool,
    /// Unix seconds of the last frame from the peer.
    pub last_contact: Option<i64>,
    pub last_error: Option<String>,
    /// Ops applied from the peer since this process started.
    pub applied: u64,
    /// The peer's log heads at its last heartbeat.
    pub peer_heads: BTreeMap<String, u64>,
    /// Milliseconds from when the peer made a change to when it was
    /// applied here, for the last `RECENT_LAGS` changes (the two clocks
    /// are the HLC's: NTP-close on a real pair, one clock on one machine).
    pub recent_lags_ms: std::collections::VecDeque<u64>,
    /// A heartbeat came since start: everything the peer had when this
    /// connection began has been applied here.
    pub caught_up_once: bool,
    /// A snapshot is being received and installed now (`seeding`).
    pub snapshot_running: bool,
    /// The peer did not offer a snapshot (an older version): seeding
    /// pulls its whole log instead.
    pub snapshot_unsupported: bool,
    /// `Replication::seed` stopped waiting: no snapshot is asked for
    /// from then on, in this process.
    pub seeding_given_up: bool,
    /// The snapshot this node was seeded with, since start.
    pub seeded: Option<super::seeding::SeedReport>,
}

/// How many recent changes' lags are kept for `pair status`.
pub const RECENT_LAGS: usize = 4096;

impl LinkStatus {
    pub fn record_lag(&mut self, ms: u64) {
        if self.recent_lags_ms.len() == RECENT_LAGS {
            self.recent_lags_ms.pop_front();
        }
        self.recent_lags_ms.push_back(ms);
    }

    /// The (p50, p99) of the recent lags, when there are any.
    pub fn lag_percentiles(&self) -> Option<(u64, u64)> {
        let mut sorted: Vec<u64> = self.recent_lags_ms.iter().copied().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        let at = |q: usize| sorted[(sorted.len() - 1) * q / 100];
        Some((at(50), at(99)))
    }
}

/// Commands on `pair.sock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum PairCommand {
    Status,
    Verify,
}

pub fn execute(rep: &Replication, command: &PairCommand) -> Result<String, String> {
    match command {
        PairCommand::Status => Ok(status_text(rep)),
        PairCommand::Verify => verify(rep),
    }
}

/// Ops the peer has that we have not applied yet, per origin.
pub fn lag(rep: &Replication, heads: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    heads
        .iter()
        .map(|(origin, head)| {
            let here = rep.store.last_seq(origin).unwrap_or(0);
            (origin.clone(), head.saturating_sub(here))
        })
        .collect()
}

/// The link's state for the console and `/metrics` (`None`: no peer yet).
pub fn pair_state(rep: &Replication) -> Option<crate::ops::node_report::PairState> {
    let peer = rep.peer()?;
    let s = rep.status.lock().map(|s| s.clone()).unwrap_or_default();
    let lag_ms = s.lag_percentiles();
    Some(crate::ops::node_report::PairState {
        peer_name: peer.name,
        peer_addr: peer.addr,
        connected: s.connected,
        last_contact: s.last_contact,
        behind: lag(rep, &s.peer_heads).values().sum(),
        last_error: s.last_error,
        alerts: rep.alerts.lock().map(|a| a.clone()).unwrap_or_default(),
        lag_ms,
    })
}

fn status_text(rep: &Replication) -> String {
    let s = rep.status.lock().map(|s| s.clone()).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "this node: {}", rep.node);
    match rep.peer() {
        None => {
            let _ = writeln!(out, "peer: none yet (waiting for `campusmail pair join`)");
            return out;
        }
        Some(p) => {
            let _ = writeln!(out, "peer: {} at {}", p.name, p.addr);
        }
    }
    let now = chrono::Utc::now().timestamp();
    let _ = writeln!(out, "link: {}", if s.connected { "up" } else { "DOWN" });
    for alert in rep.alerts.lock().map(|a| a.clone()).unwrap_or_default() {
        let _ = writeln!(out, "ALERT: {}", alert.describe());
    }
    if let Some(t) = s.last_contact {
        let _ = writeln!(
            out,
            "last heard from the peer: {}s ago",
            now.saturating_sub(t)
        );
    }
    for (origin, behind) in lag(rep, &s.peer_heads) {
        let _ = writeln!(out, "behind on {origin}: {behind} op(s)");
    }
    if s.snapshot_running {
        let _ = writeln!(out, "seeding: receiving a snapshot of the peer's store");
    }
    if let Some(seeded) = &s.seeded {
        let at = chrono::DateTime::from_timestamp(seeded.at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let _ = writeln!(out, "{} (at {at})", seeded.describe());
    }
    let _ = writeln!(out, "ops applied from the peer since start: {}", s.applied);
    if let Some((p50, p99)) = s.lag_percentiles() {
        let _ = writeln!(
            out,
            "replication lag over the last {} change(s): p50 {p50} ms, p99 {p99} ms",
            s.recent_lags_ms.len()
        );
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(out, "last error: {e}");
    }
    out
}

/// Compares our digest with the peer's (asked over the link).
fn verify(rep: &Replication) -> Result<String, String> {
    let (mine, my_messages) = rep.store.digest().map_err(|e| e.to_string())?;
    let peer = rep
        .peer()
        .ok_or_else(|| "no peer yet: pair a second node first".to_string())?;
    let (theirs, their_messages) = super::client::ask_digest(rep, &peer)
        .map_err(|e| format!("cannot reach {}: {e}", peer.name))?;
    if mine == theirs {
        Ok(format!(
            "identical: {} and {} both hold the same {my_messages} message(s) (digest {mine})\n",
            rep.node, peer.name
        ))
    } else {
        Err(format!(
            "DIFFERENT: {} has {my_messages} message(s) (digest {mine}), {} has {their_messages} (digest {theirs}); if the link was just down, wait for it to catch up (`campusmail pair status`) and verify again",
            rep.node, peer.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_percentiles_over_a_bounded_window() {
        let mut s = LinkStatus::default();
        assert_eq!(s.lag_percentiles(), None);
        for ms in 1..=100 {
            s.record_lag(ms);
        }
        assert_eq!(s.lag_percentiles(), Some((50, 99)));
        for _ in 0..RECENT_LAGS {
            s.record_lag(7);
        }
        assert_eq!(s.recent_lags_ms.len(), RECENT_LAGS);
        assert_eq!(s.lag_percentiles(), Some((7, 7)));
    }
}
