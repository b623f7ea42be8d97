//! Prometheus `/metrics` through the real binary: the text parses with the
//! Python `prometheus_client` parser (Debian python3-prometheus-client),
//! its counters move when mail is accepted and delivered, and a refused
//! source address or a missing token gets 403.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

/// The exposition parsed by prometheus_client: "name{k=v,...}" -> value.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        out["%s{%s}" % (s.name, labels)] = s.value
print(json.dumps(out))
"#;

/// GET /metrics with curl; (status, body).
fn fetch(node: &Node, token: Option<&str>) -> (u16, String) {
    let url = format!("https://127.0.0.1:{}/metrics", node.ports.https);
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--max-time", "30", "-w", "\n%{http_code}"]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = cmd.arg(&url).output().expect("curl is installed");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text.split_off(text.rfind('\n').expect("status line") + 1);
    text.pop();
    (code.trim().parse().unwrap_or(0), text)
}

fn parse(text: &str) -> BTreeMap<String, f64> {
    use std::io::Write;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (apt-get install python3-prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

fn metrics(node: &Node, token: Option<&str>) -> BTreeMap<String, f64> {
    let (status, body) = fetch(node, token);
    assert_eq!(status, 200, "{body}");
    parse(&body)
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {m:#?}"))
}

#[test]
fn metrics_parse_move_with_mail_and_refuse_strangers() {
    let token = "0123456789abcdef0123456789abcdef-test-token";
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.set_key("bearer_token", &format!("\"{token}\""));
    // Store statistics are cached for one sample interval.
    node.set_key("sample_every", "\"1s\"");
    node.start("all");

    // From loopback (allowed) but without the token: refused.
    let (status, body) = fetch(&node, None);
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("campusmail_"), "{body}");
    assert_eq!(
        fetch(&node, Some("wrong-token-wrong-token-wrong-token")).0,
        403
    );

    let before = metrics(&node, Some(token));
    assert_eq!(value(&before, "campusmail_engine_up{}"), 1.0);
    for lane in ["normal", "bulk"] {
        value(
            &before,
            &format!("campusmail_queue_messages{{lane={lane}}}"),
        );
    }
    let accepted = value(&before, "campusmail_messages_accepted_total{}");
    let delivered = value(
        &before,
        "campusmail_recipient_deliveries_total{outcome=delivered}",
    );
    let store_dir = node.data().join("store").display().to_string();
    value(
        &before,
        &format!("campusmail_store_bytes{{dir={store_dir}}}"),
    );
    assert!(
        value(
            &before,
            &format!("campusmail_store_free_bytes{{dir={store_dir}}}")
        ) > 0.0
    );
    assert!(
        value(
            &before,
            "campusmail_process_resident_memory_bytes{role=all}"
        ) > 0.0
    );
    value(&before, "campusmail_process_cpu_seconds_total{role=all}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert!(
        value(
            &before,
            "campusmail_tls_certificate_expiry_timestamp_seconds{}"
        ) > now
    );
    assert_eq!(value(&before, "campusmail_webmail_sessions{}"), 0.0);
    assert!(
        value(&before, "campusmail_web_connections{}") >= 1.0,
        "this scrape's own"
    );
    assert_eq!(value(&before, "campusmail_smtp_connections{}"), 0.0);

    // Mail in: accepted and delivered move; a signed-in user is a session.
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "dean@example.org",
        "--to",
        &address_of("alice"),
        "--header",
        "Subject: counted",
    ]);
    assert!(ok, "{t}");
    let _alice = node.web_login("alice");
    let after = wait_until(30, || {
        let m = metrics(&node, Some(token));
        let stored = value(&m, &format!("campusmail_store_bytes{{dir={store_dir}}}"));
        (value(
            &m,
            "campusmail_recipient_deliveries_total{outcome=delivered}",
        ) > delivered
            && stored > 0.0)
            .then_some(m)
    })
    .expect("the delivery is counted");
    assert_eq!(
        value(&after, "campusmail_messages_accepted_total{}"),
        accepted + 1.0
    );
    assert_eq!(value(&after, "campusmail_webmail_sessions{}"), 1.0);

    // A source outside the allow-list is refused even with the token.
    node.kill("all");
    node.set_key("allow_from", "[\"192.0.2.0/24\"]");
    node.start("all");
    let (status, body) = fetch(&node, Some(token));
    assert_eq!(status, 403, "{body}");
    assert!(node.log("all").contains("/metrics refused"));
}

#[test]
fn with_the_roles_apart_both_processes_are_measured_and_a_stopped_engine_is_down() {
    let mut node = Node::new();
    node.start("mailbox");
    node.start("engine");
    let m = metrics(&node, None);
    assert_eq!(value(&m, "campusmail_engine_up{}"), 1.0);
    for role in ["mailbox", "engine"] {
        assert!(
            value(
                &m,
                &format!("campusmail_process_resident_memory_bytes{{role={role}}}")
            ) > 0.0
        );
        value(
            &m,
            &format!("campusmail_process_cpu_seconds_total{{role={role}}}"),
        );
    }
    value(&m, "campusmail_queue_messages{lane=normal}");

    node.kill("engine");
    let m = metrics(&node, None);
    assert_eq!(value(&m, "campusmail_engine_up{}"), 0.0);
    assert!(
        !m.keys().any(|k| k.starts_with("campusmail_queue_")),
        "{m:#?}"
    );
    value(&m, "campusmail_process_cpu_seconds_total{role=mailbox}");
}
