//! `/metrics`: a `NodeReport` in the Prometheus text format. The metric
//! names are documented in docs/admin-guide.md ("Monitoring"); renaming one
//! breaks the admins' dashboards and alerts, so names only ever get added.
//!
//! Reads untrusted input: no (label values are escaped by `exposition`).

use super::exposition::{Exposition, Kind};
use super::node_report::NodeReport;

pub fn render(report: &NodeReport) -> String {
    let mut e = Exposition::new();
    e.family(
        "campusmail_node_info",
        Kind::Gauge,
        "Always 1; the labels name this node and the program version.",
    )
    .sample(
        &[
            ("node", &report.node),
            ("version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
    let engine = report.engine.as_ref().ok();
    e.single(
        "campusmail_engine_up",
        Kind::Gauge,
        "1 when the engine (SMTP and queue) answered this scrape, else 0.",
        if engine.is_some() { 1.0 } else { 0.0 },
    );
    if let Some(engine) = engine {
        let c = &engine.counters;
        e.single(
            "campusmail_messages_accepted_total",
            Kind::Counter,
            "Messages accepted by SMTP (after the 250 reply) since the engine started.",
            c.accepted as f64,
        );
        e.family(
            "campusmail_recipient_deliveries_total",
            Kind::Counter,
            "Delivery outcomes per recipient since the engine started: delivered, deferred (will be retried) or bounced (failed for good).",
        )
        .sample(&[("outcome", "delivered")], c.delivered as f64)
        .sample(&[("outcome", "deferred")], c.deferred as f64)
        .sample(&[("outcome", "bounced")], c.bounced as f64);
        e.single(
            "campusmail_smtp_connections",
            Kind::Gauge,
            "SMTP sessions open now (all three ports).",
            c.smtp_connections as f64,
        );
        let lanes = &engine.lanes;
        let mut f = e.family(
            "campusmail_queue_messages",
            Kind::Gauge,
            "Messages waiting in the queue, per lane.",
        );
        for l in lanes {
            f.sample(&[("lane", l.lane.name())], l.messages as f64);
        }
        let mut f = e.family(
            "campusmail_queue_pending_recipients",
            Kind::Gauge,
            "Recipients still to be delivered, per lane.",
        );
        for l in lanes {
            f.sample(&[("lane", l.lane.name())], l.pending_recipients as f64);
        }
        let mut f = e.family(
            "campusmail_queue_held_messages",
            Kind::Gauge,
            "Messages held by an admin, per lane.",
        );
        for l in lanes {
            f.sample(&[("lane", l.lane.name())], l.held as f64);
        }
        let mut f = e.family(
            "campusmail_queue_oldest_age_seconds",
            Kind::Gauge,
            "How long the oldest queued message has waited, per lane (0 when empty).",
        );
        for l in lanes {
            f.sample(&[("lane", l.lane.name())], l.oldest_age as f64);
        }
    }
    if let Ok(disks) = &report.disks {
        let mut f = e.family(
            "campusmail_store_bytes",
            Kind::Gauge,
            "Bytes in the mail store's segment files, per data directory.",
        );
        for d in disks {
            f.sample(&[("dir", &d.path)], d.bytes as f64);
        }
        let mut f = e.family(
            "campusmail_store_garbage_bytes",
            Kind::Gauge,
            "Of those, bytes of deleted mail not yet reclaimed by compaction.",
        );
        for d in disks {
            f.sample(&[("dir", &d.path)], d.garbage as f64);
        }
        let mut f = e.family(
            "campusmail_store_free_bytes",
            Kind::Gauge,
            "Free space of the file system holding each data directory.",
        );
        for d in disks.iter().filter(|d| d.free.is_some()) {
            f.sample(&[("dir", &d.path)], d.free.unwrap_or(0) as f64);
        }
        let mut f = e.family(
            "campusmail_store_filesystem_bytes",
            Kind::Gauge,
            "Size of the file system holding each data directory.",
        );
        for d in disks.iter().filter(|d| d.total.is_some()) {
            f.sample(&[("dir", &d.path)], d.total.unwrap_or(0) as f64);
        }
    }
    if let Some(n) = report.web_connections {
        e.single(
            "campusmail_web_connections",
            Kind::Gauge,
            "HTTPS connections open now (webmail, console, API).",
            n as f64,
        );
    }
    if let Some(n) = report.webmail_sessions {
        e.single(
            "campusmail_webmail_sessions",
            Kind::Gauge,
            "Webmail sessions signed in now.",
            n as f64,
        );
    }
    // One process, or two when the roles run apart.
    let separate = report.separate_engine();
    let mine = if separate.is_some() || engine.is_none() {
        "mailbox"
    } else {
        "all"
    };
    let mut processes = vec![(mine, report.process)];
    if let Some(e) = separate {
        processes.push(("engine", e.process));
    }
    let mut f = e.family(
        "campusmail_process_cpu_seconds_total",
        Kind::Counter,
        "User and system CPU time of each campusmail process (role: all, mailbox or engine).",
    );
    for (role, p) in &processes {
        if let Some(cpu) = p.cpu_seconds {
            f.sample(&[("role", role)], cpu);
        }
    }
    let mut f = e.family(
        "campusmail_process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory of each campusmail process.",
    );
    for (role, p) in &processes {
        if let Some(rss) = p.resident_bytes {
            f.sample(&[("role", role)], rss as f64);
        }
    }
    if let Some(pair) = &report.pair {
        let peer = [("peer", pair.peer_name.as_str())];
        e.family(
            "campusmail_pair_link_up",
            Kind::Gauge,
            "1 while this node is pulling the peer's changes, else 0.",
        )
        .sample(&peer, if pair.connected { 1.0 } else { 0.0 });
        e.family(
            "campusmail_pair_behind_ops",
            Kind::Gauge,
            "Changes the peer has announced that this node has not applied yet.",
        )
        .sample(&peer, pair.behind as f64);
        if let Some((p50, p99)) = pair.lag_ms {
            let mut lag = e.family(
                "campusmail_pair_lag_seconds",
                Kind::Gauge,
                "Time from a change on the peer to its arrival here, over the last changes (quantile 0.5 and 0.99).",
            );
            for (q, ms) in [("0.5", p50), ("0.99", p99)] {
                lag.sample(
                    &[("peer", pair.peer_name.as_str()), ("quantile", q)],
                    ms as f64 / 1000.0,
                );
            }
        }
        let mut alert = e.family(
            "campusmail_pair_alert",
            Kind::Gauge,
            "1 while an alert about the pair link is raised (link_down, behind), else 0.",
        );
        for name in ["link_down", "behind"] {
            let raised = pair.alerts.iter().any(|a| a.name() == name);
            alert.sample(
                &[("peer", pair.peer_name.as_str()), ("alert", name)],
                if raised { 1.0 } else { 0.0 },
            );
        }
        if let Some(at) = pair.last_contact {
            e.family(
                "campusmail_pair_last_contact_timestamp_seconds",
                Kind::Gauge,
                "When this node last heard from the peer (unix seconds).",
            )
            .sample(&peer, at as f64);
        }
    }
    if let Some(at) = report.cert_expiry {
        e.single(
            "campusmail_tls_certificate_expiry_timestamp_seconds",
            Kind::Gauge,
            "When the TLS certificate of SMTP and HTTPS stops being valid (unix seconds).",
            at as f64,
        );
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::console_api::{EngineReport, LaneReport};
    use crate::engine::queue::QueueLane;
    use crate::ops::node_report::DiskReport;
    use crate::ops::process::ProcessStats;

    #[test]
    fn every_family_is_typed_and_an_absent_engine_is_down() {
        let mut report = NodeReport {
            at: 0,
            node: "node-a".into(),
            engine: Err("not running".into()),
            disks: Ok(vec![DiskReport {
                path: "/srv/d1".into(),
                bytes: 10,
                garbage: 2,
                free: Some(5),
                total: Some(20),
            }]),
            web_connections: Some(3),
            webmail_sessions: Some(1),
            process: ProcessStats {
                cpu_seconds: Some(1.5),
                resident_bytes: Some(4096),
            },
            pid: 7,
            cert_expiry: Some(2_000_000_000),
            pair: Some(crate::ops::node_report::PairState {
                peer_name: "node-b".into(),
                connected: true,
                behind: 3,
                lag_ms: Some((40, 1500)),
                ..Default::default()
            }),
        };
        let text = render(&report);
        assert!(text.contains("campusmail_engine_up 0\n"), "{text}");
        assert!(text.contains("campusmail_pair_link_up{peer=\"node-b\"} 1\n"));
        assert!(text.contains("campusmail_pair_behind_ops{peer=\"node-b\"} 3\n"));
        assert!(text.contains("campusmail_pair_alert{peer=\"node-b\",alert=\"link_down\"} 0\n"));
        assert!(
            text.contains("campusmail_pair_lag_seconds{peer=\"node-b\",quantile=\"0.99\"} 1.5\n"),
            "{text}"
        );
        assert!(text.contains("campusmail_store_bytes{dir=\"/srv/d1\"} 10\n"));
        assert!(text.contains("campusmail_process_cpu_seconds_total{role=\"mailbox\"} 1.5\n"));
        assert!(!text.contains("campusmail_queue_messages"));
        report.engine = Ok(EngineReport {
            pid: 9,
            lanes: vec![LaneReport {
                lane: QueueLane::Bulk,
                messages: 4,
                ..LaneReport::default()
            }],
            process: ProcessStats {
                cpu_seconds: Some(2.0),
                resident_bytes: None,
            },
            ..EngineReport::default()
        });
        let text = render(&report);
        assert!(
            text.contains("campusmail_queue_messages{lane=\"bulk\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("campusmail_process_cpu_seconds_total{role=\"engine\"} 2\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} untyped");
        }
    }
}
