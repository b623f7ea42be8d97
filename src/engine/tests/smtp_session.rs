//! SMTP sessions on the three ports, driven by a raw client.
//!
//! Reads untrusted input: no (tests only).

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::{dead_port, queued_id, TestEngine};
use crate::engine::queue::Envelope;
use crate::engine::test_support::RawClient;

#[test]
fn mx_session_queues_local_mail_durably() {
    let engine = TestEngine::start(dead_port(), |_| {});
    let mut c = engine.client(engine.handle.smtp_addr());
    let (code, lines) = c.command("EHLO client.example.org");
    assert_eq!(code, 250);
    for keyword in [
        "PIPELINING",
        "SIZE 100000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(
            lines.iter().any(|l| l == keyword),
            "{keyword} missing from {lines:?}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("AUTH")),
        "no AUTH on MX: {lines:?}"
    );
    assert_eq!(c.command("AUTH PLAIN AGEAYg==").0, 502);
    assert_eq!(
        c.command("RCPT TO:<alice@campus.test>").1[0],
        "5.5.1 Error: need MAIL command"
    );
    assert_eq!(c.command("MAIL FROM:<bob@example.org> SIZE=200000").0, 552);
    assert_eq!(c.command("MAIL FROM:<bob@example.org> SIZE=100").0, 250);
    assert_eq!(c.command("RCPT TO:<Alice@Campus.Test>").0, 250);
    assert_eq!(
        c.command("RCPT TO:<nobody@campus.test>").1[0],
        "5.1.1 <nobody@campus.test>: no such user here"
    );
    let (code, _) = c.command("RCPT TO:<someone@elsewhere.test>");
    assert_eq!(code, 554, "never an open relay");
    let reply = c.command("DATA");
    assert_eq!(reply.0, 354);
    c.send_raw(b"Subject: hello\r\n\r\nline one\r\n..leading dot\r\n.\r\n");
    let id = queued_id(&c.reply());
    assert_eq!(c.command("QUIT").0, 221);

    let message = engine.queued_message(&id);
    // The verdict on mail from outside (RFC 8601) above our trace field.
    assert!(
        message.starts_with("Authentication-Results: mx.campus.test;"),
        "{message}"
    );
    assert!(
        message.contains(
            "\r\nReceived: from client.example.org ([127.0.0.1])\r\n\tby mx.campus.test with ESMTP id "
        ),
        "{message}"
    );
    assert!(
        message.contains("\tfor <alice@campus.test>;\r\n"),
        "{message}"
    );
    assert!(
        message.ends_with("Subject: hello\r\n\r\nline one\r\n.leading dot\r\n"),
        "{message}"
    );
    let envelope: Envelope = engine.queued_envelope(&id);
    assert_eq!(envelope.sender, "bob@example.org");
    assert_eq!(envelope.recipients.len(), 1);
    assert_eq!(envelope.recipients[0].address, "alice@campus.test");
}

#[test]
fn pipelined_smuggling_attempt_is_refused_and_nothing_queued() {
    let engine = TestEngine::start(dead_port(), |_| {});
    let mut c = engine.client(engine.handle.smtp_addr());
    c.send_raw(
        b"EHLO a.test\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@campus.test>\r\nDATA\r\n",
    );
    let codes: Vec<u16> = (0..4).map(|_| c.reply().0).collect();
    assert_eq!(codes, [250, 250, 250, 354]);
    c.send_raw(b"hi\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@campus.test>\r\n.\r\n");
    let (code, lines) = c.reply();
    assert_eq!(code, 550);
    assert!(lines[0].starts_with("5.6.0 "), "{lines:?}");
    assert_eq!(c.command("RSET").0, 250, "still in step after the real end");
    assert_eq!(engine.queued_files(), 0);
}

#[test]
fn limits_close_the_session() {
    let engine = TestEngine::start(dead_port(), |c| {
        c.engine.idle_timeout_secs = 1;
        c.engine.max_errors = 3;
    });
    let mut c = engine.client(engine.handle.smtp_addr());
    let long = format!("NOOP {}", "x".repeat(600));
    assert_eq!(c.command(&long).1[0], "5.5.2 Line too long");
    assert_eq!(c.command("XYZZY").0, 500);
    assert_eq!(c.command("MAIL FROM:<a@x.test>").0, 503);
    let (code, _) = c.command("BOGUS");
    assert_eq!(code, 500);
    assert_eq!(
        c.reply().1[0],
        "4.7.0 mx.campus.test Error: too many errors"
    );
    assert!(c.is_closed());

    let mut idle = engine.client(engine.handle.smtp_addr());
    let started = Instant::now();
    let (code, lines) = idle.reply();
    assert_eq!((code, lines[0].split(' ').next()), (421, Some("4.4.2")));
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn tls_stream(
    tcp: TcpStream,
    cert: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn submission_needs_tls_then_auth_and_may_relay() {
    let engine = TestEngine::start(dead_port(), |_| {});
    let addr = engine.handle.submission_addr();

    // Pipelining after STARTTLS is refused (CVE-2011-0411).
    let mut c = engine.client(addr);
    c.command("EHLO a.test");
    c.send_raw(b"STARTTLS\r\nMAIL FROM:<x@example.org>\r\n");
    assert_eq!(c.reply().0, 554);
    assert!(c.is_closed());

    let mut c = engine.client(addr);
    let (_, lines) = c.command("EHLO a.test");
    assert!(lines.iter().any(|l| l == "STARTTLS") && !lines.iter().any(|l| l.starts_with("AUTH")));
    assert_eq!(
        c.command("AUTH PLAIN AGFsaWNlQGNhbXB1cy50ZXN0AGFsaWNlLXBhc3N3b3Jk")
            .1[0],
        "5.7.11 Encryption required for requested authentication mechanism"
    );
    assert_eq!(
        c.command("MAIL FROM:<alice@campus.test>").1[0],
        "5.7.0 Authentication required"
    );
    assert_eq!(c.command("STARTTLS").0, 220);
    let mut c = RawClient::new(tls_stream(c.into_inner(), &engine.config.tls.cert));
    assert_eq!(
        c.command("MAIL FROM:<alice@campus.test>").0,
        503,
        "EHLO is forgotten after TLS"
    );
    let (_, lines) = c.command("EHLO a.test");
    assert!(
        lines.iter().any(|l| l == "AUTH PLAIN LOGIN") && !lines.iter().any(|l| l == "STARTTLS"),
        "{lines:?}"
    );
    let plain = |user: &str, pw: &str| BASE64.encode(format!("\0{user}\0{pw}"));
    assert_eq!(
        c.command(&format!(
            "AUTH PLAIN {}",
            plain("alice@campus.test", "wrong")
        ))
        .1[0],
        "5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        c.command(&format!(
            "AUTH PLAIN {}",
            plain("old@campus.test", "old-password")
        ))
        .0,
        535
    );
    assert_eq!(c.command("AUTH LOGIN").1[0], BASE64.encode("Username:"));
    assert_eq!(c.command(&BASE64.encode("alice@campus.test")).0, 334);
    assert_eq!(c.command(&BASE64.encode("alice-password")).0, 235);
    assert_eq!(c.command("MAIL FROM:<alice@campus.test>").0, 250);
    assert_eq!(
        c.command("RCPT TO:<friend@elsewhere.test>").0,
        250,
        "authenticated users may relay"
    );
    assert_eq!(
        c.command("RCPT TO:<old@campus.test>").1[0],
        "5.2.1 <old@campus.test>: mailbox disabled"
    );
    assert_eq!(c.command("DATA").0, 354);
    c.send_raw(b"Subject: out\r\n\r\nbye\r\n.\r\n");
    let id = queued_id(&c.reply());
    let message = engine.queued_message(&id);
    assert!(message.contains(" with ESMTPSA id "), "{message}");
    assert!(
        !message.contains("alice"),
        "the login is not in the header: {message}"
    );
}

#[test]
fn implicit_tls_port_speaks_tls_first() {
    let engine = TestEngine::start(dead_port(), |_| {});
    let tcp = TcpStream::connect(engine.handle.submissions_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = RawClient::new(tls_stream(tcp, &engine.config.tls.cert));
    assert_eq!(c.reply().0, 220);
    let (_, lines) = c.command("EHLO a.test");
    assert!(lines.iter().any(|l| l == "AUTH PLAIN LOGIN"), "{lines:?}");
}

/// A real client nobody here wrote: swaks (Debian package), when installed.
fn swaks(args: &[&str]) -> Option<std::process::Output> {
    let output = std::process::Command::new("swaks").args(args).output();
    match output {
        Ok(output) => Some(output),
        Err(_) => {
            eprintln!("swaks is not installed; skipping the real-client check");
            None
        }
    }
}

#[test]
fn swaks_submits_with_starttls_auth_and_pipelining() {
    let engine = TestEngine::start(dead_port(), |_| {});
    for (addr, tls_flag, auth) in [
        (engine.handle.submission_addr(), "--tls", "PLAIN"),
        (
            engine.handle.submissions_addr(),
            "--tls-on-connect",
            "LOGIN",
        ),
    ] {
        let server = addr.to_string();
        let args = [
            "--server",
            &server,
            "--from",
            "alice@campus.test",
            "--to",
            "friend@elsewhere.test,alice@campus.test",
            tls_flag,
            "--auth",
            auth,
            "--auth-user",
            "alice@campus.test",
            "--auth-password",
            "alice-password",
            "--pipeline",
            "--timeout",
            "20",
            "--body",
            ".leading dot\nline two",
        ];
        let Some(output) = swaks(&args) else { return };
        let transcript = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{transcript}");
        assert!(
            transcript.contains("250 2.0.0 Ok: queued as "),
            "{transcript}"
        );
    }
    let Some(output) = swaks(&[
        "--server",
        &engine.handle.smtp_addr().to_string(),
        "--from",
        "x@example.org",
        "--to",
        "friend@elsewhere.test",
        "--timeout",
        "20",
    ]) else {
        return;
    };
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(
        transcript.contains("554 5.7.1 <friend@elsewhere.test>: Relay access denied"),
        "{transcript}"
    );
    assert_eq!(engine.queued_files(), 2, "two messages, one file each");
}
