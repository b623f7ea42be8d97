//! Alerts for the pair link: the link down, or this node far behind the
//! peer, for longer than `[pair] alert_after`.
//!
//! An alert is raised once when its condition has held that long and
//! cleared once when it stops; both are logged (raised at error level, so
//! journald/syslog filters catch it), the active ones are shown by the
//! console's dashboard and `pair status`, and `/metrics` has a gauge per
//! kind (`campusmail_pair_alert`) for Prometheus rules. `AlertWatch` is
//! the pure state machine; `run` feeds it every few seconds.
//!
//! Reads untrusted input: no.

use std::sync::Arc;
use std::time::Duration;

use super::Replication;
use crate::ops::node_report::{PairAlert, PairAlertKind};

/// How often the link's state is looked at.
const EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
pub struct AlertRules {
    /// A condition must hold this long (seconds) before it is an alert.
    pub after_secs: i64,
    /// Ops behind the peer that count as "far behind".
    pub behind_ops: u64,
}

/// A change in the set of active alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Raised(PairAlert),
    Cleared(PairAlert),
}

/// Remembers since when each condition holds, and which alerts are raised.
pub struct AlertWatch {
    rules: AlertRules,
    down_since: Option<i64>,
    behind_since: Option<i64>,
    active: Vec<PairAlert>,
}

impl AlertWatch {
    /// `started` counts as the last contact until the first one.
    pub fn new(rules: AlertRules) -> AlertWatch {
        AlertWatch {
            rules,
            down_since: None,
            behind_since: None,
            active: Vec::new(),
        }
    }

    pub fn active(&self) -> &[PairAlert] {
        &self.active
    }

    /// One look at the link at `now` (unix seconds).
    pub fn observe(&mut self, connected: bool, behind: u64, now: i64) -> Vec<Change> {
        let down = since(&mut self.down_since, !connected, now);
        let far = since(&mut self.behind_since, behind >= self.rules.behind_ops, now);
        let mut wanted = Vec::new();
        if let Some(t) = down.filter(|t| now - t >= self.rules.after_secs) {
            wanted.push(PairAlert {
                kind: PairAlertKind::LinkDown,
                since: t,
            });
        }
        if let Some(t) = far.filter(|t| now - t >= self.rules.after_secs) {
            wanted.push(PairAlert {
                kind: PairAlertKind::Behind { ops: behind },
                since: t,
            });
        }
        let same_kind = |a: &PairAlert, b: &PairAlert| {
            std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind)
        };
        let mut changes = Vec::new();
        for old in &self.active {
            if !wanted.iter().any(|w| same_kind(w, old)) {
                changes.push(Change::Cleared(old.clone()));
            }
        }
        for new in &wanted {
            if !self.active.iter().any(|a| same_kind(a, new)) {
                changes.push(Change::Raised(new.clone()));
            }
        }
        self.active = wanted;
        changes
    }
}

/// Since when `holds` has been true (None while it is false).
fn since(slot: &mut Option<i64>, holds: bool, now: i64) -> Option<i64> {
    if !holds {
        *slot = None;
    } else if slot.is_none() {
        *slot = Some(now);
    }
    *slot
}

/// Watches the link for as long as the process runs.
pub fn run(rep: Arc<Replication>, rules: AlertRules) {
    let mut watch = AlertWatch::new(rules);
    loop {
        std::thread::sleep(EVERY);
        // Only once a peer is named: before the join there is no link to miss.
        let Some(state) = super::status::pair_state(&rep) else {
            continue;
        };
        let now = chrono::Utc::now().timestamp();
        for change in watch.observe(state.connected, state.behind, now) {
            match change {
                Change::Raised(alert) => tracing::error!(peer = %state.peer_name,
                    alert = %alert.describe(), "pair alert raised"),
                Change::Cleared(alert) => tracing::warn!(peer = %state.peer_name,
                    alert = %alert.describe(), "pair alert cleared"),
            }
        }
        if let Ok(mut active) = rep.alerts.lock() {
            *active = watch.active().to_vec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AlertRules {
        AlertRules {
            after_secs: 60,
            behind_ops: 100,
        }
    }

    #[test]
    fn a_short_outage_raises_nothing_a_long_one_raises_once_and_clears() {
        let mut w = AlertWatch::new(rules());
        assert!(w.observe(false, 0, 1000).is_empty());
        assert!(w.observe(true, 0, 1030).is_empty(), "back within a minute");
        assert!(w.observe(false, 0, 1040).is_empty());
        let raised = w.observe(false, 0, 1100);
        assert_eq!(
            raised,
            vec![Change::Raised(PairAlert {
                kind: PairAlertKind::LinkDown,
                since: 1040
            })]
        );
        assert!(w.observe(false, 0, 1200).is_empty(), "raised once");
        assert_eq!(w.active().len(), 1);
        let cleared = w.observe(true, 0, 1300);
        assert!(matches!(cleared.as_slice(), [Change::Cleared(_)]));
        assert!(w.active().is_empty());
    }

    #[test]
    fn lag_past_the_threshold_for_long_enough_is_an_alert() {
        let mut w = AlertWatch::new(rules());
        assert!(w.observe(true, 500, 0).is_empty());
        assert!(w.observe(true, 50, 30).is_empty(), "caught up in time");
        assert!(w.observe(true, 500, 40).is_empty());
        let raised = w.observe(true, 800, 100);
        assert!(
            matches!(
                raised.as_slice(),
                [Change::Raised(PairAlert {
                    kind: PairAlertKind::Behind { ops: 800 },
                    since: 40
                })]
            ),
            "{raised:?}"
        );
        // A changing count is the same alert, not a new one.
        assert!(w.observe(true, 900, 110).is_empty());
        assert!(matches!(
            w.observe(true, 0, 120).as_slice(),
            [Change::Cleared(_)]
        ));
    }
}
