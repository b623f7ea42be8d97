//! SPF, DKIM and DMARC through the real binary (R7): a DNS server on
//! loopback (dnsmasq) serves the test zone; mail from outside gets one
//! Authentication-Results field and the sender domain's DMARC policy
//! (reject: 550 5.7.1, quarantine: Junk); mail our users send is
//! DKIM-signed, verified by a second campusmail and by dkimpy, an
//! independent implementation.

mod common;

use common::peers::Dns;
use common::*;

/// `campusmail dns records DOMAIN` as (name, type, value) rows.
fn records(node: &Node, domain: &str) -> Vec<(String, String, String)> {
    node.cli_ok(&["dns", "records", domain], None)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            Some((
                parts.next()?.trim_end_matches('.').to_string(),
                parts.next()?.to_string(),
                parts.next()?.trim_matches('"').to_string(),
            ))
        })
        .collect()
}

/// dnsmasq options publishing `rows` (TXT split into 250-octet strings).
fn publish(rows: &[(String, String, String)], mx_ip: &str) -> Vec<String> {
    let mut options = Vec::new();
    for (name, kind, value) in rows {
        match kind.as_str() {
            "TXT" => {
                let chunks: Vec<String> = value
                    .as_bytes()
                    .chunks(250)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                options.push(format!("--txt-record={name},{}", chunks.join(",")));
            }
            "MX" => {
                let target = value
                    .split_whitespace()
                    .last()
                    .unwrap_or("")
                    .trim_end_matches('.');
                options.push(format!("--mx-host={name},{target},10"));
                options.push(format!("--host-record={target},{mx_ip}"));
            }
            _ => {}
        }
    }
    options
}

fn outside_zone() -> Vec<String> {
    [
        // A sender whose SPF allows this test client (127.0.0.1).
        "--txt-record=good.test,v=spf1 ip4:127.0.0.1 -all",
        "--txt-record=_dmarc.good.test,v=DMARC1; p=reject",
        // Senders whose SPF forbids it, with each DMARC policy.
        "--txt-record=forged.test,v=spf1 -all",
        "--txt-record=_dmarc.forged.test,v=DMARC1; p=reject",
        "--txt-record=shady.test,v=spf1 -all",
        "--txt-record=_dmarc.shady.test,v=DMARC1; p=quarantine",
        "--txt-record=partner.test,v=spf1 -all",
        "--txt-record=_dmarc.partner.test,v=DMARC1; p=reject",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn send_from_outside(
    node: &Node,
    from: &str,
    subject: &str,
    extra_header: Option<&str>,
) -> (bool, String) {
    let mut args = vec![
        "--server".to_string(),
        node.smtp_addr(),
        "--from".into(),
        from.into(),
        "--to".into(),
        address_of("alice"),
        "--header".into(),
        format!("Subject: {subject}"),
    ];
    if let Some(h) = extra_header {
        args.push("--add-header".into());
        args.push(h.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    swaks(&args)
}

fn raw_of(web: &Web, subject: &str, folder: &str) -> String {
    let list = web.get(&format!("/mail?folder={folder}"));
    let start = list
        .body
        .find(subject)
        .unwrap_or_else(|| panic!("{subject} not in {folder}: {}", list.body));
    let link_start = list.body[..start]
        .rfind("href=\"/mail/message/")
        .expect("a message link")
        + 6;
    let link_end = list.body[link_start..].find('"').unwrap() + link_start;
    let raw = web.get(&format!("{}/raw", &list.body[link_start..link_end]));
    assert_eq!(raw.status, 200);
    raw.body
}

#[test]
fn inbound_mail_is_judged_and_dmarc_policies_are_enforced() {
    let dns = Dns::start(&outside_zone());
    let mut node = Node::new();
    node.set_key("nameservers", &format!("[\"{}\"]", dns.addr()));
    node.set_key("dmarc_monitor_only", "[\"partner.test\"]");
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.start("all");
    let web = node.web_login("alice");

    // Passes SPF and DMARC; a forged verdict with our name is removed.
    let (ok, t) = send_from_outside(
        &node,
        "news@good.test",
        "Good news",
        Some("Authentication-Results: mail.campus.test; dmarc=pass (forged)"),
    );
    assert!(ok, "{t}");
    wait_until(30, || web.inbox().contains("Good news").then_some(()))
        .unwrap_or_else(|| panic!("{}", node.log("all")));
    let raw = raw_of(&web, "Good news", "INBOX");
    assert_eq!(
        raw.matches("Authentication-Results: mail.campus.test")
            .count(),
        1,
        "{raw}"
    );
    assert!(!raw.contains("(forged)"), "{raw}");
    assert!(
        raw.contains("spf=pass") && raw.contains("dmarc=pass"),
        "{raw}"
    );

    // DMARC p=reject: refused at the end of DATA.
    let (ok, t) = send_from_outside(&node, "boss@forged.test", "Wire the money", None);
    assert!(!ok);
    assert!(t.contains("550 5.7.1"), "{t}");

    // DMARC p=quarantine: delivered, but to Junk.
    let (ok, t) = send_from_outside(&node, "deals@shady.test", "Cheap deals", None);
    assert!(ok, "{t}");
    let junk = wait_until(30, || {
        let page = web.get("/mail?folder=Junk").body;
        page.contains("Cheap deals").then_some(page)
    })
    .unwrap_or_else(|| panic!("not in Junk: {}", node.log("all")));
    assert!(junk.contains("Cheap deals"));
    assert!(!web.inbox().contains("Cheap deals"));
    let raw = raw_of(&web, "Cheap deals", "Junk");
    assert!(raw.contains("dmarc=fail"), "{raw}");

    // A sender that tries to pick the folder itself gets no say.
    let (ok, _) = send_from_outside(
        &node,
        "news@good.test",
        "Choose my folder",
        Some("X-Campusmail-Deliver-To: Junk"),
    );
    assert!(ok);
    wait_until(30, || {
        web.inbox().contains("Choose my folder").then_some(())
    })
    .expect("delivered to the inbox regardless");

    // A domain the admin only monitors: delivered, the verdict recorded.
    let (ok, t) = send_from_outside(&node, "office@partner.test", "Partner note", None);
    assert!(ok, "{t}");
    wait_until(30, || web.inbox().contains("Partner note").then_some(()))
        .expect("monitored domain delivered");
    assert!(raw_of(&web, "Partner note", "INBOX").contains("dmarc=fail"));

    // Never the store for the refused one.
    assert!(!web.inbox().contains("Wire the money"));
    assert!(!web.get("/mail?folder=Junk").body.contains("Wire the money"));
}

#[test]
fn our_mail_is_dkim_signed_and_verifies_independently() {
    // Node A's records go into the zone, so A must exist first.
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    let ours = records(&node, DOMAIN);
    assert!(
        ours.iter()
            .any(|(n, k, _)| n.contains("._domainkey.") && k == "TXT"),
        "{ours:?}"
    );
    assert!(
        ours.iter()
            .any(|(n, _, v)| n.starts_with("_dmarc.") && v.starts_with("v=DMARC1")),
        "{ours:?}"
    );
    assert!(
        ours.iter()
            .any(|(n, _, v)| n == DOMAIN && v.starts_with("v=spf1")),
        "{ours:?}"
    );

    let mut zone = publish(&ours, "10.0.0.1");
    zone.extend([
        "--mx-host=remote.test,mx.remote.test,10".to_string(),
        "--host-record=mx.remote.test,127.0.0.1".to_string(),
    ]);
    let dns = Dns::start(&zone);

    // `dns check` now finds everything in place.
    node.set_key("nameservers", &format!("[\"{}\"]", dns.addr()));
    let check = node.cli(&["dns", "check", DOMAIN], None);
    let text = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!text.to_lowercase().contains("missing"), "{text}");
    // ...and says in plain words what a domain without records lacks.
    node.cli_ok(&["domain", "add", "bare.test"], None);
    let bare = node.cli(&["dns", "check", "bare.test"], None);
    let bare_text = String::from_utf8_lossy(&bare.stdout).to_lowercase();
    assert!(!bare.status.success());
    assert!(
        bare_text.contains("dkim") && bare_text.contains("dmarc"),
        "{bare_text}"
    );

    // Node B receives by MX and verifies inbound.
    let mut remote = Node::new();
    remote.set_key("nameservers", &format!("[\"{}\"]", dns.addr()));
    remote.cli_ok(&["domain", "add", "remote.test"], None);
    remote.cli_ok(
        &["user", "add", "carol@remote.test", "--password-stdin"],
        Some(&password_of("carol")),
    );
    remote.start("all");
    node.set_key("mx_port", &remote.ports.smtp.to_string());
    node.start("all");

    let (ok, t) = submit_as(
        &node,
        "alice",
        &address_of("alice"),
        "carol@remote.test",
        &["--header", "Subject: Signed hello"],
    );
    assert!(ok, "{t}");
    let carol = Web::new(&remote);
    assert_eq!(
        carol.login("carol@remote.test", &password_of("carol")).0,
        303
    );
    wait_until(30, || carol.inbox().contains("Signed hello").then_some(()))
        .unwrap_or_else(|| panic!("not delivered: {}", node.log("all")));
    let raw = raw_of(&carol, "Signed hello", "INBOX");
    assert_eq!(
        raw.matches("DKIM-Signature:").count(),
        2,
        "RSA and Ed25519: {raw}"
    );
    assert!(raw.contains("dkim=pass"), "{raw}");
    assert!(raw.contains("dmarc=pass"), "{raw}");

    // An independent verifier: dkimpy, given our published key records.
    let message = raw
        .split_once("DKIM-Signature:")
        .map(|(_, rest)| format!("DKIM-Signature:{rest}"))
        .unwrap();
    let keys: Vec<String> = ours
        .iter()
        .filter(|(n, _, _)| n.contains("._domainkey."))
        .map(|(n, _, v)| format!("{n}.\t{v}"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("msg.eml"),
        message.replace("\r\n", "\n").replace('\n', "\r\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("keys.txt"), keys.join("\n")).unwrap();
    let script = r#"
import sys, dkim
keys = dict(line.split("\t", 1) for line in open(sys.argv[2]).read().splitlines())
def dnsfunc(name, timeout=5):
    return keys.get(name.decode().rstrip(".") + ".", "").encode()
msg = open(sys.argv[1], "rb").read()
d = dkim.DKIM(msg)
sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
results = [dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc) for i in range(len(sigs))]
print(results)
sys.exit(0 if len(results) == 2 and all(results) else 1)
"#;
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("msg.eml"))
        .arg(dir.path().join("keys.txt"))
        .output()
        .expect("python3 with dkimpy (apt-get install python3-dkim python3-nacl)");
    assert!(
        out.status.success(),
        "dkimpy says: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mail_from_a_trusted_relay_is_not_judged_again() {
    let dns = Dns::start(&outside_zone());
    let mut node = Node::new();
    node.set_key("nameservers", &format!("[\"{}\"]", dns.addr()));
    // The campus spam appliance: it already checked this mail.
    node.set_key("trusted_relays", "[\"127.0.0.0/8\"]");
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.start("all");
    let (ok, t) = send_from_outside(
        &node,
        "boss@forged.test",
        "Relayed by the appliance",
        Some("Authentication-Results: spam-appliance.campus.test; dmarc=pass"),
    );
    assert!(ok, "a trusted relay's mail is not refused: {t}");
    let web = node.web_login("alice");
    wait_until(30, || {
        web.inbox()
            .contains("Relayed by the appliance")
            .then_some(())
    })
    .expect("delivered to the inbox");
    let raw = raw_of(&web, "Relayed by the appliance", "INBOX");
    assert!(
        raw.contains("Authentication-Results: spam-appliance.campus.test"),
        "{raw}"
    );
    assert!(
        !raw.contains("Authentication-Results: mail.campus.test"),
        "{raw}"
    );
}
