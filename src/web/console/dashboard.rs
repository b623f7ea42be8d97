//! `GET /admin?range=hour|day|week`: the overview. This node's state (and
//! a place for the peer's), certificate expiry, and charts of the node's
//! own samples: mail in and out, delivery failures, queue per lane, disk
//! use per data directory, CPU, memory, connections (R17, O1).
//!
//! Owns: turning the samples and a fresh `NodeReport` into display
//! strings and charts (`charts.rs` draws them).
//!
//! Reads untrusted input: the `range` query value (compared with the
//! three windows; anything else is the hour).

use askama::Template;

use super::charts::{self, Chart, Window};
use super::pages::{problem, ConsoleChrome, Problem};
use super::{Console, Ctx};
use crate::ops::node_report::PairAlertKind;
use crate::ops::samples::Sample;
use crate::store::stats::human_bytes;
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;
use crate::web::webmail::pages::render;

/// Certificates expiring sooner than this are shown as a warning.
const CERT_WARN_DAYS: i64 = 21;

pub struct RangeLink {
    pub href: String,
    pub label: String,
    pub current: bool,
}

/// One line of the node card.
pub struct Fact {
    pub label: String,
    pub value: String,
    pub warn: bool,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage<'a> {
    t: &'a Catalog,
    chrome: ConsoleChrome,
    users_text: String,
    domains: Vec<String>,
    node_title: String,
    node: Vec<Fact>,
    peer: Vec<Fact>,
    ranges: Vec<RangeLink>,
    charts: Vec<Chart>,
    charts_note: String,
    /// The times at the left and right edge of every chart.
    window_from: String,
    window_to: String,
}

pub fn show(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let domains = match console.directory.domains() {
        Ok(domains) => domains,
        Err(err) => {
            tracing::error!(%err, "directory failed listing domains");
            return problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    let window = ctx
        .query
        .get("range")
        .and_then(Window::parse)
        .unwrap_or(Window::Hour);
    let monitor = &console.monitor;
    let report = monitor.report(ctx.now);
    let config = monitor.config();
    let count = console.directory.user_count().to_string();
    let samples = monitor.samples().since(ctx.now - window.secs() - 3600);
    let page = DashboardPage {
        t,
        chrome: ConsoleChrome::new(t, "console.dashboard_title", "/admin", Some(session)),
        users_text: t.fill("console.dashboard_users", &[("count", &count)]),
        domains,
        node_title: t.fill(
            "ops.node_title",
            &[("node", &config.node.name), ("host", &config.node.hostname)],
        ),
        node: node_facts(t, &report, ctx.now),
        peer: peer_facts(t, config, report.pair.as_ref(), ctx.now),
        ranges: Window::ALL
            .into_iter()
            .map(|w| RangeLink {
                href: format!("/admin?range={}", w.name()),
                label: t.get(&format!("ops.range_{}", w.name())).to_string(),
                current: w == window,
            })
            .collect(),
        charts: build_charts(t, &samples, window, ctx.now),
        window_from: crate::web::format::date_time(ctx.now - window.secs()),
        window_to: crate::web::format::date_time(ctx.now),
        charts_note: t.fill(
            "ops.charts_note",
            &[("every", &config.metrics.sample_every.as_secs().to_string())],
        ),
    };
    render(200, &page)
}

fn node_facts(t: &Catalog, report: &crate::ops::node_report::NodeReport, now: i64) -> Vec<Fact> {
    let mut facts = Vec::new();
    let fact = |label: &str, value: String, warn: bool| Fact {
        label: t.get(label).to_string(),
        value,
        warn,
    };
    match &report.engine {
        Ok(engine) => {
            facts.push(fact(
                "ops.engine",
                t.get("ops.engine_running").to_string(),
                false,
            ));
            for lane in &engine.lanes {
                facts.push(Fact {
                    label: t.fill("ops.queue_lane", &[("lane", lane.lane.name())]),
                    value: t.fill(
                        "ops.queue_lane_value",
                        &[
                            ("messages", &lane.messages.to_string()),
                            ("held", &lane.held.to_string()),
                            ("deferred", &lane.deferred.to_string()),
                        ],
                    ),
                    warn: lane.oldest_age > 3600,
                });
            }
            facts.push(fact(
                "ops.smtp_connections",
                engine.counters.smtp_connections.to_string(),
                false,
            ));
        }
        Err(reason) => {
            tracing::debug!(%reason, "dashboard: the engine did not answer");
            facts.push(fact(
                "ops.engine",
                t.get("ops.engine_stopped").to_string(),
                true,
            ));
        }
    }
    if let Some(n) = report.web_connections {
        facts.push(fact("ops.web_connections", n.to_string(), false));
    }
    if let Some(n) = report.webmail_sessions {
        facts.push(fact("ops.sessions", n.to_string(), false));
    }
    match report.cert_expiry {
        Some(at) => {
            let days = (at - now).div_euclid(86_400);
            let date = crate::web::format::date_time(at);
            let text = if days < 0 {
                t.fill("ops.cert_expired", &[("date", &date)])
            } else {
                t.fill(
                    "ops.cert_expires",
                    &[("date", &date), ("days", &days.to_string())],
                )
            };
            facts.push(fact("ops.cert", text, days < CERT_WARN_DAYS));
        }
        None => facts.push(fact(
            "ops.cert",
            t.get("ops.cert_unreadable").to_string(),
            true,
        )),
    }
    facts
}

/// The peer's box: the live link when this node is paired, else what
/// `[pair]` says (not paired, or waiting for the second node to join).
fn peer_facts(
    t: &Catalog,
    config: &crate::config::Config,
    pair: Option<&crate::ops::node_report::PairState>,
    now: i64,
) -> Vec<Fact> {
    let fact = |label: &str, value: String, warn: bool| Fact {
        label: t.get(label).to_string(),
        value,
        warn,
    };
    let Some(pair) = pair else {
        let state = if config.pair.listen.is_empty() {
            "ops.peer_none"
        } else {
            "ops.peer_waiting"
        };
        return vec![fact("ops.peer", t.get(state).to_string(), false)];
    };
    let mut facts = vec![
        fact(
            "ops.peer",
            t.fill(
                "ops.peer_named",
                &[("name", &pair.peer_name), ("addr", &pair.peer_addr)],
            ),
            false,
        ),
        if pair.connected {
            fact(
                "ops.peer_link",
                t.get("ops.peer_link_up").to_string(),
                false,
            )
        } else {
            fact(
                "ops.peer_link",
                t.get("ops.peer_link_down").to_string(),
                true,
            )
        },
    ];
    if let Some(at) = pair.last_contact {
        let ago = now.saturating_sub(at).max(0).to_string();
        facts.push(fact(
            "ops.peer_contact",
            t.fill("ops.peer_contact_value", &[("seconds", &ago)]),
            false,
        ));
    }
    facts.push(fact(
        "ops.peer_behind",
        t.fill(
            "ops.peer_behind_value",
            &[("ops", &pair.behind.to_string())],
        ),
        false,
    ));
    if let Some((p50, p99)) = pair.lag_ms {
        facts.push(fact(
            "ops.peer_lag",
            t.fill(
                "ops.peer_lag_value",
                &[("p50", &p50.to_string()), ("p99", &p99.to_string())],
            ),
            false,
        ));
    }
    if let Some(err) = &pair.last_error {
        facts.push(fact("ops.peer_error", err.clone(), !pair.connected));
    }
    for alert in &pair.alerts {
        let minutes = (now.saturating_sub(alert.since).max(0) / 60).to_string();
        let text = match alert.kind {
            PairAlertKind::LinkDown => t.fill("ops.peer_alert_down", &[("minutes", &minutes)]),
            PairAlertKind::Behind { ops } => t.fill(
                "ops.peer_alert_behind",
                &[("minutes", &minutes), ("ops", &ops.to_string())],
            ),
        };
        facts.push(fact("ops.peer_alert", text, true));
    }
    facts
}

/// Rates and averaged counts: one decimal below ten ("0.5"), whole above.
fn one_decimal_below_ten(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn build_charts(t: &Catalog, samples: &[Sample], window: Window, now: i64) -> Vec<Chart> {
    let b = |points: Vec<charts::Point>| charts::bucketed(&points, window, now);
    let bytes = |v: f64| human_bytes(v.max(0.0) as u64);
    let percent = |v: f64| format!("{v:.0}%");
    let mut out = Vec::new();
    out.push(charts::chart(
        t.get("ops.chart_mail").to_string(),
        vec![
            (
                t.get("ops.series_in").to_string(),
                b(charts::rate(samples, |s| s.accepted)),
            ),
            (
                t.get("ops.series_out").to_string(),
                b(charts::rate(samples, |s| s.delivered)),
            ),
        ],
        &one_decimal_below_ten,
    ));
    out.push(charts::chart(
        t.get("ops.chart_failures").to_string(),
        vec![
            (
                t.get("ops.series_deferred").to_string(),
                b(charts::rate(samples, |s| s.deferred)),
            ),
            (
                t.get("ops.series_bounced").to_string(),
                b(charts::rate(samples, |s| s.bounced)),
            ),
        ],
        &one_decimal_below_ten,
    ));
    out.push(charts::chart(
        t.get("ops.chart_queue").to_string(),
        vec![
            (
                "normal".to_string(),
                b(charts::gauge(samples, |s| s.queue_normal.map(|v| v as f64))),
            ),
            (
                "bulk".to_string(),
                b(charts::gauge(samples, |s| s.queue_bulk.map(|v| v as f64))),
            ),
        ],
        &one_decimal_below_ten,
    ));
    // Every data directory seen in the window, in a stable order.
    let dirs: std::collections::BTreeSet<String> = samples
        .iter()
        .flat_map(|s| s.disks.iter().map(|d| d.path.clone()))
        .collect();
    out.push(charts::chart(
        t.get("ops.chart_disk").to_string(),
        dirs.into_iter()
            .take(charts::MAX_SERIES)
            .map(|dir| {
                let points = charts::gauge(samples, |s| {
                    s.disks
                        .iter()
                        .find(|d| d.path == dir)
                        .map(|d| d.bytes as f64)
                });
                (dir, b(points))
            })
            .collect(),
        &bytes,
    ));
    out.push(charts::chart(
        t.get("ops.chart_cpu").to_string(),
        vec![(
            t.get("ops.series_cpu").to_string(),
            b(charts::cpu_percent(samples)),
        )],
        &percent,
    ));
    out.push(charts::chart(
        t.get("ops.chart_memory").to_string(),
        vec![(
            t.get("ops.series_memory").to_string(),
            b(charts::gauge(samples, |s| s.memory.map(|v| v as f64))),
        )],
        &bytes,
    ));
    out.push(charts::chart(
        t.get("ops.chart_connections").to_string(),
        vec![
            (
                "SMTP".to_string(),
                b(charts::gauge(samples, |s| {
                    s.smtp_connections.map(|v| v as f64)
                })),
            ),
            (
                "HTTPS".to_string(),
                b(charts::gauge(samples, |s| {
                    s.web_connections.map(|v| v as f64)
                })),
            ),
            (
                t.get("ops.series_sessions").to_string(),
                b(charts::gauge(samples, |s| s.sessions.map(|v| v as f64))),
            ),
        ],
        &one_decimal_below_ten,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::samples::DiskSample;
    use crate::web::i18n::Lang;

    #[test]
    fn the_page_escapes_labels_and_uses_no_inline_style() {
        let t = Lang::En.catalog();
        let session = Session {
            user: "admin".into(),
            stamp: None,
            csrf_token: "tok".into(),
            created_at: 0,
            ip: std::net::IpAddr::from([192, 0, 2, 1]),
        };
        let disk = |at: i64| Sample {
            at,
            engine_pid: Some(1),
            accepted: Some(at as u64),
            disks: vec![DiskSample {
                path: "/srv/<script>x</script>".into(),
                bytes: 10,
                free: None,
            }],
            ..Sample::default()
        };
        let now = 10_000;
        let page = DashboardPage {
            t,
            chrome: ConsoleChrome::new(t, "console.dashboard_title", "/admin", Some(&session)),
            users_text: String::new(),
            domains: vec!["<b>campus.test</b>".into()],
            node_title: "<i>node</i>".into(),
            node: vec![Fact {
                label: "l".into(),
                value: "<u>v</u>".into(),
                warn: true,
            }],
            peer: Vec::new(),
            ranges: Vec::new(),
            charts: build_charts(t, &[disk(now - 120), disk(now - 60)], Window::Hour, now),
            charts_note: String::new(),
            window_from: "a".into(),
            window_to: "b".into(),
        };
        let html = page.render().unwrap();
        for raw in ["<script>", "<b>campus", "<i>node", "<u>v"] {
            assert!(!html.contains(raw), "{raw} unescaped");
        }
        assert!(!html.contains("style="));
        assert_eq!(html.matches("<svg class=\"ops-svg\"").count(), 7);
        assert!(html.contains("class=\"ops-warn\""));
        assert!(html.contains("points=\""));
    }
}
