//! Tests of `inbound` against a real DNS server on loopback (the engine's
//! test server) serving SPF, DKIM and DMARC records; the signed messages are
//! signed by our own signer with keys made for the run.

use super::*;
use crate::auth::test_support::{message, sender_domain};
use crate::engine::delivery::dns_test_server::{TestDns, Zone};

const US: &str = "mx.campus.test";
const ALLOWED_IP: &str = "192.0.2.10";
const OTHER_IP: &str = "198.51.100.7";

/// The test zone; `dkim` says how the sender's DKIM keys are served.
fn zone(dkim: KeyDns) -> Zone {
    let spf = format!("v=spf1 ip4:{ALLOWED_IP} -all");
    let mut zone = Zone::default()
        .txt("sender.test", &spf)
        .txt("sender.test", "some-site-verification=abc")
        .txt("_dmarc.sender.test", "v=DMARC1; p=reject")
        .txt("helo.test", &spf)
        .txt("softfail.test", "v=spf1 ~all")
        .txt("neutral.test", "v=spf1 ?all")
        .txt("permerror.test", "v=spf1 ip4:not-an-address -all")
        .servfail("temperror.test")
        .txt("none.test", &spf)
        .txt("_dmarc.none.test", "v=DMARC1; p=none")
        .txt("quarantine.test", &spf)
        .txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine")
        .txt("reject.test", &spf)
        .txt(
            "_dmarc.reject.test",
            "v=DMARC1; p=reject; rua=mailto:dmarc@reject.test",
        )
        .txt("campus.test", "v=spf1 ip4:192.0.2.99 -all")
        .txt("_dmarc.campus.test", "v=DMARC1; p=reject");
    for key in &sender_domain().keys.active {
        let name = format!("{}._domainkey.sender.test", key.selector);
        zone = match dkim {
            KeyDns::Published => zone.txt(&name, &key.dns_value()),
            KeyDns::Missing => zone,
            KeyDns::ServFail => zone.servfail(&name),
        };
    }
    zone
}

#[derive(Clone, Copy)]
enum KeyDns {
    Published,
    Missing,
    ServFail,
}

struct Setup {
    _dns: TestDns,
    auth: Authenticator,
}

fn setup(dkim: KeyDns) -> Setup {
    let dns = TestDns::start(zone(dkim));
    let resolver = DnsResolver::with_timeout(&[dns.addr], Duration::from_secs(2), 1).unwrap();
    let auth = Authenticator::new(&resolver, US).unwrap();
    Setup { _dns: dns, auth }
}

fn verify(setup: &Setup, ip: &str, helo: &str, mail_from: &str, msg: &[u8]) -> InboundVerdict {
    let req = InboundRequest {
        client_ip: ip.parse().unwrap(),
        helo,
        mail_from,
        message: msg,
    };
    smol::block_on(setup.auth.verify(&req))
}

fn assert_one_folded_field(header: &str) {
    assert!(
        header.starts_with("Authentication-Results: mx.campus.test;\r\n\t"),
        "{header}"
    );
    assert!(header.ends_with("\r\n"));
    let body = &header[..header.len() - 2];
    for (i, _) in body.match_indices('\n') {
        assert!(i > 0 && &body[i - 1..i] == "\r", "bare LF in {header:?}");
        assert!(
            matches!(&body[i + 1..i + 2], "\t" | " "),
            "unfolded line in {header:?}"
        );
    }
    assert!(
        !body.replace("\r\n", "").contains('\r'),
        "bare CR in {header:?}"
    );
}

#[test]
fn signed_mail_from_an_allowed_host_passes_everything() {
    let setup = setup(KeyDns::Published);
    let msg = sender_domain().signed("Sam <sam@sender.test>", "Hello there.\r\n");
    let verdict = verify(
        &setup,
        ALLOWED_IP,
        "mail.sender.test",
        "sam@sender.test",
        &msg,
    );
    assert_eq!(verdict.action, PolicyAction::Accept);
    assert_eq!(verdict.summary, "spf=pass dkim=pass dmarc=pass");
    assert_eq!(verdict.from_domain.as_deref(), Some("sender.test"));
    assert_one_folded_field(&verdict.header);
    let h = &verdict.header;
    assert!(h.contains("\tspf=pass ("), "{h}");
    assert!(h.contains("smtp.mailfrom=sam@sender.test"), "{h}");
    assert_eq!(
        h.matches("\tdkim=pass header.d=sender.test header.s=")
            .count(),
        2,
        "{h}"
    );
    assert!(
        h.contains("\tdmarc=pass header.from=sender.test policy.dmarc=reject"),
        "{h}"
    );
    assert!(h.contains("\tarc=none"), "{h}");
}

#[test]
fn spf_results_for_each_kind_of_record() {
    let setup = setup(KeyDns::Published);
    let cases = [
        (ALLOWED_IP, "a@sender.test", "pass"),
        (OTHER_IP, "a@sender.test", "fail"),
        (OTHER_IP, "a@softfail.test", "softfail"),
        (OTHER_IP, "a@neutral.test", "neutral"),
        (OTHER_IP, "a@temperror.test", "temperror"),
        (OTHER_IP, "a@permerror.test", "permerror"),
        (OTHER_IP, "a@nowhere.test", "none"),
    ];
    for (ip, mail_from, expected) in cases {
        let msg = message("Someone <someone@elsewhere.test>", "hi\r\n");
        let verdict = verify(&setup, ip, "client.test", mail_from, &msg);
        assert!(
            verdict.summary.starts_with(&format!("spf={expected} ")),
            "{mail_from} from {ip}: {}",
            verdict.summary
        );
        assert!(
            verdict.header.contains(&format!("\tspf={expected} (")),
            "{}",
            verdict.header
        );
        assert_one_folded_field(&verdict.header);
    }
}

#[test]
fn the_null_sender_is_checked_by_its_helo_name() {
    let setup = setup(KeyDns::Published);
    let msg = message("MAILER-DAEMON <postmaster@helo.test>", "bounce\r\n");
    let verdict = verify(&setup, ALLOWED_IP, "helo.test", "", &msg);
    assert!(
        verdict.summary.starts_with("spf=pass "),
        "{}",
        verdict.summary
    );
    assert!(
        verdict.header.contains("smtp.helo=helo.test"),
        "{}",
        verdict.header
    );
    assert!(
        !verdict.header.contains("smtp.mailfrom"),
        "{}",
        verdict.header
    );
    let verdict = verify(&setup, OTHER_IP, "helo.test", "<>", &msg);
    assert!(
        verdict.summary.starts_with("spf=fail "),
        "{}",
        verdict.summary
    );
}

#[test]
fn dkim_fails_when_the_body_was_altered() {
    let setup = setup(KeyDns::Published);
    let msg = sender_domain().signed("sam@sender.test", "Pay 10 euros.\r\n");
    let altered = String::from_utf8(msg)
        .unwrap()
        .replace("10 euros", "99 euros");
    // Sent from a host SPF does not allow: DMARC has nothing left.
    let verdict = verify(
        &setup,
        OTHER_IP,
        "x.test",
        "sam@sender.test",
        altered.as_bytes(),
    );
    // A body hash mismatch is reported as Gmail and mail-auth do:
    // "neutral (body hash did not verify)"; DMARC counts it as no pass.
    assert_eq!(
        verdict.summary,
        "spf=fail dkim=neutral dmarc=fail(p=reject)"
    );
    assert!(
        verdict
            .header
            .contains("\tdkim=neutral (body hash did not verify)"),
        "{}",
        verdict.header
    );
    assert_eq!(verdict.action, PolicyAction::Reject);

    // An altered signed header field fails the signature itself.
    let msg = sender_domain().signed("sam@sender.test", "Pay 10 euros.\r\n");
    let altered = String::from_utf8(msg)
        .unwrap()
        .replace("Subject: Test message", "Subject: Urgent");
    let verdict = verify(
        &setup,
        OTHER_IP,
        "x.test",
        "sam@sender.test",
        altered.as_bytes(),
    );
    assert_eq!(verdict.summary, "spf=fail dkim=fail dmarc=fail(p=reject)");
    assert!(
        verdict.header.contains("\tdkim=fail ("),
        "{}",
        verdict.header
    );
}

#[test]
fn dkim_without_a_published_key_is_a_permanent_error() {
    let setup = setup(KeyDns::Missing);
    let msg = sender_domain().signed("sam@sender.test", "hi\r\n");
    let verdict = verify(&setup, ALLOWED_IP, "x.test", "sam@sender.test", &msg);
    assert!(
        verdict.summary.contains(" dkim=permerror "),
        "{}",
        verdict.summary
    );
    // SPF still passes and aligns, so DMARC passes.
    assert!(
        verdict.summary.ends_with("dmarc=pass"),
        "{}",
        verdict.summary
    );
    assert_eq!(verdict.action, PolicyAction::Accept);
}

#[test]
fn dkim_key_lookup_failure_is_a_temporary_error_and_never_rejects() {
    let setup = setup(KeyDns::ServFail);
    let msg = sender_domain().signed("sam@sender.test", "hi\r\n");
    let verdict = verify(&setup, OTHER_IP, "x.test", "sam@sender.test", &msg);
    assert!(
        verdict.summary.contains(" dkim=temperror "),
        "{}",
        verdict.summary
    );
    assert!(
        verdict.summary.ends_with("dmarc=temperror"),
        "{}",
        verdict.summary
    );
    assert_eq!(verdict.action, PolicyAction::Accept);
}

#[test]
fn dmarc_failure_follows_the_domain_policy() {
    let setup = setup(KeyDns::Published);
    for (domain, action, policy) in [
        ("none.test", PolicyAction::Accept, "none"),
        ("quarantine.test", PolicyAction::Quarantine, "quarantine"),
        ("reject.test", PolicyAction::Reject, "reject"),
    ] {
        let from = format!("someone@{domain}");
        let msg = message(&from, "hi\r\n");
        let verdict = verify(&setup, OTHER_IP, "x.test", &from, &msg);
        assert_eq!(verdict.action, action, "{domain}: {}", verdict.summary);
        assert_eq!(
            verdict.summary,
            format!("spf=fail dkim=none dmarc=fail(p={policy})")
        );
        assert!(
            verdict.header.contains("\tdmarc=fail"),
            "{}",
            verdict.header
        );
        assert!(
            verdict.header.contains(&format!("policy.dmarc={policy}")),
            "{}",
            verdict.header
        );
        // From the allowed host the same message passes (SPF aligned).
        let verdict = verify(&setup, ALLOWED_IP, "x.test", &from, &msg);
        assert_eq!(verdict.action, PolicyAction::Accept, "{}", verdict.summary);
        assert!(
            verdict.summary.ends_with("dmarc=pass"),
            "{}",
            verdict.summary
        );
    }
}

#[test]
fn a_forged_from_of_our_own_domain_is_rejected() {
    let setup = setup(KeyDns::Published);
    // An outsider with its own (unaligned) envelope writes "From: boss@campus.test".
    let msg = message("The Boss <boss@campus.test>", "Please buy gift cards.\r\n");
    let verdict = verify(&setup, "203.0.113.5", "evil.test", "x@sender.test", &msg);
    assert_eq!(verdict.action, PolicyAction::Reject, "{}", verdict.summary);
    assert_eq!(verdict.summary, "spf=fail dkim=none dmarc=fail(p=reject)");
    assert_eq!(verdict.from_domain.as_deref(), Some("campus.test"));
    // Signed by another domain (sender.test) does not align either.
    let signed = sender_domain().signed("boss@campus.test", "hi\r\n");
    let verdict = verify(&setup, ALLOWED_IP, "x.test", "x@sender.test", &signed);
    assert_eq!(verdict.summary, "spf=pass dkim=pass dmarc=fail(p=reject)");
    assert_eq!(verdict.action, PolicyAction::Reject);
}

#[test]
fn arc_is_checked_when_a_seal_is_present() {
    let setup = setup(KeyDns::Published);
    let mut msg = b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=sender.test; s=nokey; t=1;\r\n\tb=AAAA\r\n\
        ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=sender.test; s=nokey;\r\n\th=from; bh=AAAA; b=AAAA\r\n\
        ARC-Authentication-Results: i=1; mx.sender.test; spf=pass\r\n"
        .to_vec();
    msg.extend_from_slice(&message("a@elsewhere.test", "hi\r\n"));
    let verdict = verify(&setup, OTHER_IP, "x.test", "a@elsewhere.test", &msg);
    assert!(verdict.summary.contains(" arc="), "{}", verdict.summary);
    assert!(
        !verdict.summary.ends_with(" arc=pass"),
        "{}",
        verdict.summary
    );
    assert!(!verdict.header.contains("\tarc=none"), "{}", verdict.header);
    assert_one_folded_field(&verdict.header);
}

#[test]
fn a_valid_arc_chain_passes() {
    use mail_auth::arc::ArcSealer;
    use mail_auth::common::crypto::{RsaKey, Sha256};
    use mail_auth::common::headers::HeaderWriter;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::PrivateKeyDer;

    let setup = setup(KeyDns::Published);
    let domain = sender_domain();
    // A mailing list at sender.test forwarded a message and sealed it.
    let original = message("a@elsewhere.test", "hi\r\n");
    let parsed = AuthenticatedMessage::parse(&original).unwrap();
    let results = AuthenticationResults::new("lists.sender.test");
    let key =
        RsaKey::<Sha256>::from_key_der(PrivateKeyDer::from_pem_slice(&domain.rsa_pem).unwrap())
            .unwrap();
    let seal = ArcSealer::from_key(key)
        .domain("sender.test")
        .selector(domain.keys.active[0].selector.clone())
        .headers(["From", "To", "Subject"])
        .seal(&parsed, &results, &ArcOutput::default())
        .unwrap()
        .to_header();
    let sealed = [seal.as_bytes(), &original].concat();
    let verdict = verify(&setup, OTHER_IP, "x.test", "a@elsewhere.test", &sealed);
    assert!(
        verdict.summary.ends_with(" arc=pass"),
        "{}",
        verdict.summary
    );
    assert!(
        verdict.header.contains("\tarc=pass smtp.remote-ip="),
        "{}",
        verdict.header
    );
}

#[test]
fn hostile_envelope_and_headers_cannot_add_header_lines() {
    let setup = setup(KeyDns::Published);
    let mut msg = b"DKIM-Signature: v=1; a=rsa-sha256; d=evil.test\r\n\t\r\n\tX-Injected: yes; s=a\"b\r\n\t\"; h=from; bh=AAAA; b=AAAA\r\n"
        .to_vec();
    msg.extend_from_slice(&message("a@b\"\r\n\tX-Evil: 1.test", "hi\r\n"));
    let verdict = verify(
        &setup,
        OTHER_IP,
        "evil\r\nX-Injected: yes",
        "a\r\nX-Injected: yes@x.test",
        &msg,
    );
    assert_one_folded_field(&verdict.header);
    assert!(!verdict.header.contains("\r\nX-"), "{}", verdict.header);
}

#[test]
fn garbage_never_panics() {
    let setup = setup(KeyDns::Published);
    for junk in [
        &b""[..],
        b"\r\n\r\n",
        b"no header here",
        b"From: \r\n\r\n",
        b"From: <@>\r\nDKIM-Signature: v=1; a=ed25519-sha256; d=; s=\r\n\r\n",
        b"\xff\xfe: \xff\r\n\r\n\xff",
    ] {
        let verdict = verify(&setup, "::1", "", "", junk);
        assert_eq!(verdict.action, PolicyAction::Accept);
        assert_one_folded_field(&verdict.header);
    }
}

#[test]
fn a_silent_dns_server_gives_temperror_not_an_error() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = DnsResolver::with_timeout(
        &[silent.local_addr().unwrap()],
        Duration::from_millis(200),
        1,
    )
    .unwrap();
    let auth = Authenticator::new(&resolver, US).unwrap();
    let msg = sender_domain().signed("sam@sender.test", "hi\r\n");
    let req = InboundRequest {
        client_ip: ALLOWED_IP.parse().unwrap(),
        helo: "x.test",
        mail_from: "sam@sender.test",
        message: &msg,
    };
    let verdict = smol::block_on(auth.verify(&req));
    assert!(
        verdict.summary.starts_with("spf=temperror dkim=temperror"),
        "{}",
        verdict.summary
    );
    assert_eq!(verdict.action, PolicyAction::Accept);
    assert_one_folded_field(&verdict.header);
}

#[test]
fn the_authserv_id_must_be_a_plain_name() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = DnsResolver::new(&[silent.local_addr().unwrap()]).unwrap();
    for bad in ["", "mx campus", "mx;campus", "mx\r\n", " mx"] {
        assert!(matches!(
            Authenticator::new(&resolver, bad),
            Err(AuthError::InvalidAuthservId(_))
        ));
    }
    let auth = Authenticator::new(&resolver, "MX.Campus.Test.").unwrap();
    assert_eq!(auth.authserv_id(), "mx.campus.test");
}

#[test]
fn our_header_survives_and_forged_ones_go() {
    // What the SMTP server does: strip forged fields, then prepend ours.
    let setup = setup(KeyDns::Published);
    let mut incoming =
        b"Authentication-Results: mx.campus.test; dmarc=pass header.from=campus.test\r\n".to_vec();
    incoming.extend_from_slice(&message("a@elsewhere.test", "hi\r\n"));
    let cleaned = strip_forged_results(&incoming, setup.auth.authserv_id());
    let verdict = verify(&setup, OTHER_IP, "x.test", "a@elsewhere.test", &cleaned);
    let stored = [verdict.header.as_bytes(), &cleaned].concat();
    let text = String::from_utf8(stored).unwrap();
    assert_eq!(
        text.matches("Authentication-Results: mx.campus.test")
            .count(),
        1
    );
    assert!(!text.contains("dmarc=pass header.from=campus.test"));
}
