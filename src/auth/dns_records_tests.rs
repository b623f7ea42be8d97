//! Tests of `dns_records` against a real DNS server on loopback.

use super::*;
use crate::auth::keys::KeyAlgorithm;
use crate::engine::delivery::dns_test_server::{TestDns, Zone};

fn key(selector: &str, algorithm: KeyAlgorithm, p: &str) -> DkimKey {
    DkimKey {
        selector: selector.into(),
        algorithm,
        created_at: 0,
        public_key_base64: p.into(),
    }
}

fn keys() -> DomainKeys {
    // Long enough to be split into several DNS strings, like an RSA key.
    let long_p = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".repeat(9);
    DomainKeys {
        domain: "campus.test".into(),
        active: vec![
            key("cm20260201-rsa", KeyAlgorithm::Rsa2048, &long_p),
            key(
                "cm20260201-ed",
                KeyAlgorithm::Ed25519,
                "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            ),
        ],
        retired: vec![key("cm20260101-rsa", KeyAlgorithm::Rsa2048, "MIIBoldkey")],
    }
}

fn resolver(dns: &TestDns) -> DnsResolver {
    DnsResolver::with_timeout(&[dns.addr], std::time::Duration::from_secs(2), 1).unwrap()
}

/// Every record exactly as `records` prints it.
fn good_zone() -> Zone {
    let mut zone = Zone::default().ip("mail.campus.test", "192.0.2.25");
    for record in records("campus.test", "mail.campus.test", &keys()) {
        zone = match record.kind {
            "MX" => zone.mx(&record.name, 10, "mail.campus.test"),
            _ => zone.txt(&record.name, &record.value),
        };
    }
    zone
}

fn run_check(zone: Zone) -> Vec<Finding> {
    let dns = TestDns::start(zone);
    smol::block_on(check(
        &resolver(&dns),
        "campus.test",
        "mail.campus.test",
        &keys(),
    ))
}

fn finding<'a>(findings: &'a [Finding], record: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.record == record)
        .unwrap_or_else(|| panic!("no finding for {record}: {findings:#?}"))
}

#[test]
fn records_cover_mx_spf_every_dkim_key_and_dmarc() {
    let records = records("Campus.Test.", "mail.campus.test", &keys());
    let shown: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| (r.name.as_str(), r.kind, r.value.as_str()))
        .collect();
    assert_eq!(shown[0], ("campus.test", "MX", "10 mail.campus.test."));
    assert_eq!(
        shown[1],
        ("campus.test", "TXT", "v=spf1 mx a:mail.campus.test -all")
    );
    assert_eq!(shown[2].0, "cm20260201-rsa._domainkey.campus.test");
    assert!(shown[2].2.starts_with("v=DKIM1; k=rsa; p=MIIB"));
    assert_eq!(
        shown[3],
        (
            "cm20260201-ed._domainkey.campus.test",
            "TXT",
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        )
    );
    assert_eq!(shown[4].0, "cm20260101-rsa._domainkey.campus.test");
    assert!(records[4].why.contains("retired"));
    assert_eq!(
        shown[5],
        (
            "_dmarc.campus.test",
            "TXT",
            "v=DMARC1; p=quarantine; rua=mailto:postmaster@campus.test"
        )
    );
    assert!(records[5].why.contains("p=reject"));
    assert!(records.iter().all(|r| !r.why.is_empty()));

    // Zone-file form: long TXT text split into quoted strings of <= 255 bytes.
    let line = records[2].zone_line();
    assert!(line.starts_with("cm20260201-rsa._domainkey.campus.test. 3600 IN TXT \"v=DKIM1;"));
    let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert!(strings.len() >= 2 && strings.iter().all(|s| s.len() <= 255));
    assert_eq!(strings.concat(), records[2].value);
    assert_eq!(
        records[0].zone_line(),
        "campus.test. 3600 IN MX 10 mail.campus.test."
    );
}

#[test]
fn a_zone_with_every_record_checks_clean() {
    let findings = run_check(good_zone());
    assert!(findings.iter().all(|f| f.ok), "{findings:#?}");
    // MX, address, SPF, 3 DKIM keys, DMARC.
    assert_eq!(findings.len(), 7);
    assert!(finding(&findings, "DKIM cm20260101-rsa (retired)")
        .message
        .contains("retired key is still published"));
}

#[test]
fn an_empty_zone_says_what_to_publish() {
    let findings = run_check(Zone::default().exists("campus.test"));
    assert!(findings.iter().all(|f| !f.ok), "{findings:#?}");
    assert!(finding(&findings, "MX campus.test")
        .message
        .contains("MX 10 mail.campus.test."));
    assert!(finding(&findings, "SPF campus.test")
        .message
        .contains("v=spf1 mx a:mail.campus.test -all"));
    assert!(finding(&findings, "DKIM cm20260201-ed")
        .message
        .contains("cm20260201-ed._domainkey.campus.test"));
    assert!(finding(&findings, "DMARC campus.test")
        .message
        .contains("v=DMARC1; p=quarantine"));
}

#[test]
fn wrong_records_are_explained() {
    let zone = Zone::default()
        .mx("campus.test", 10, "old-mx.campus.test")
        .ip("mail.campus.test", "192.0.2.25")
        .txt("campus.test", "v=spf1 -all")
        .txt("campus.test", "v=spf1 mx -all")
        .txt(
            "cm20260201-rsa._domainkey.campus.test",
            "v=DKIM1; k=rsa; p=MIIBIjANcutshort",
        )
        .txt("_dmarc.campus.test", "v=DMARC1; p=none")
        .servfail("cm20260201-ed._domainkey.campus.test");
    let findings = run_check(zone);
    let mx = finding(&findings, "MX campus.test");
    assert!(
        !mx.ok && mx.message.contains("old-mx.campus.test"),
        "{mx:?}"
    );
    let spf = finding(&findings, "SPF campus.test");
    assert!(!spf.ok && spf.message.contains("2 SPF records"), "{spf:?}");
    let rsa = finding(&findings, "DKIM cm20260201-rsa");
    assert!(!rsa.ok && rsa.message.contains("different key"), "{rsa:?}");
    let ed = finding(&findings, "DKIM cm20260201-ed");
    assert!(!ed.ok && ed.message.contains("could not look up"), "{ed:?}");
    let dmarc = finding(&findings, "DMARC campus.test");
    assert!(!dmarc.ok && dmarc.message.contains("p=none"), "{dmarc:?}");
}

#[test]
fn a_different_spf_record_that_allows_the_mail_host_is_fine() {
    let allows = good_zone_with_spf("v=spf1 ip4:192.0.2.0/24 include:_spf.example.test ~all");
    let spf = finding(&run_check(allows), "SPF campus.test").clone();
    assert!(spf.ok, "{spf:?}");
    assert!(
        spf.message.contains("differs from ours but allows"),
        "{spf:?}"
    );

    let forbids = good_zone_with_spf("v=spf1 ip4:203.0.113.0/24 -all");
    let spf = finding(&run_check(forbids), "SPF campus.test").clone();
    assert!(
        !spf.ok && spf.message.contains("a:mail.campus.test"),
        "{spf:?}"
    );
}

/// `good_zone` but with `spf` as the domain's only SPF record.
fn good_zone_with_spf(spf: &str) -> Zone {
    let mut zone = Zone::default()
        .ip("mail.campus.test", "192.0.2.25")
        .mx("campus.test", 10, "mail.campus.test")
        .txt("campus.test", spf)
        .txt("_spf.example.test", "v=spf1 -all");
    for record in records("campus.test", "mail.campus.test", &keys()) {
        if record.kind == "TXT" && record.name != "campus.test" {
            zone = zone.txt(&record.name, &record.value);
        }
    }
    zone
}

#[test]
fn txt_comparison_ignores_spacing_quotes_and_case_where_allowed() {
    assert!(same_text(
        "v=spf1  mx\t\"a:m.test\" -all",
        "v=spf1 mx a:m.test -all",
        true
    ));
    assert!(same_text("V=SPF1 MX -ALL", "v=spf1 mx -all", true));
    assert!(!same_text("v=spf1 mx", "v=spf1 mx -all", true));
    assert_eq!(
        tag("v=DKIM1; k = ed25519 ;p= ab cd", "p").as_deref(),
        Some("ab cd")
    );
    assert_eq!(tag("v=DKIM1; K=rsa", "k").as_deref(), Some("rsa"));
    assert_eq!(tag("v=DKIM1", "p"), None);
}
