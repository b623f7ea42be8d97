//! The submission client against a scripted engine on loopback: a plain
//! and TLS server that records every command and answers from a script.
//!
//! Reads untrusted input: no (tests only).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::*;

const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

struct Cert {
    der: CertificateDer<'static>,
    key_pem: String,
}

fn make_cert() -> Cert {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Cert {
        der: made.cert.der().clone(),
        key_pem: made.signing_key.serialize_pem(),
    }
}

trait Duplex: Read + Write {}
impl<T: Read + Write> Duplex for T {}

/// What the fake engine does: `answer` maps each command line to a reply;
/// `starttls` says whether EHLO offers STARTTLS. Returns the commands seen
/// (the message data as one entry).
fn fake_engine(
    cert: Cert,
    starttls: bool,
    answer: fn(&str) -> &'static str,
) -> (SocketAddr, mpsc::Receiver<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut seen = Vec::new();
        let mut stream: Box<dyn Duplex> = Box::new(tcp.try_clone().unwrap());
        stream.write_all(b"220 fake ESMTP\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut tls_on = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim_end().to_string();
            seen.push(line.clone());
            let out = reader.get_mut();
            if line.starts_with("EHLO") {
                let tls_line = if starttls && !tls_on {
                    "250-STARTTLS\r\n"
                } else {
                    ""
                };
                let reply = format!("250-fake\r\n{tls_line}250-SIZE 1000000\r\n250 AUTH PLAIN\r\n");
                out.write_all(reply.as_bytes()).unwrap();
            } else if line == "STARTTLS" {
                out.write_all(b"220 2.0.0 go ahead\r\n").unwrap();
                let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
                let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der.clone()], key)
                .unwrap();
                let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
                let tls = rustls::StreamOwned::new(conn, tcp.try_clone().unwrap());
                reader = BufReader::new(Box::new(tls));
                tls_on = true;
            } else if line == "DATA" {
                out.write_all(b"354 go\r\n").unwrap();
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                seen.push(data);
                reader
                    .get_mut()
                    .write_all(b"250 2.0.0 Ok: queued\r\n")
                    .unwrap();
            } else {
                let reply = answer(&line);
                out.write_all(format!("{reply}\r\n").as_bytes()).unwrap();
                if line == "QUIT" {
                    break;
                }
            }
        }
        let _ = tx.send(seen);
    });
    (addr, rx)
}

fn submitter(addr: SocketAddr, pinned: CertificateDer<'static>) -> Submitter {
    Submitter {
        addr,
        tls: crate::tls::pinned::client_config_for(pinned),
        hostname: "mail.campus.test".into(),
        secret: ServiceSecret::for_tests(SECRET),
    }
}

fn ok_answers(line: &str) -> &'static str {
    match line {
        "QUIT" => "221 bye",
        l if l.starts_with("AUTH") => "235 2.7.0 ok",
        _ => "250 2.0.0 ok",
    }
}

fn recipients(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn submits_over_tls_as_the_service_acting_for_the_user() {
    let cert = make_cert();
    let pinned = cert.der.clone();
    let (addr, seen) = fake_engine(cert, true, ok_answers);
    let rcpts = recipients(&["bob@campus.test", "carol@example.org"]);
    let message = b"Subject: hi\r\n\r\n.starts with a dot\r\nend\r\n";
    submitter(addr, pinned)
        .submit(&Submission {
            user: "alice@campus.test",
            sender: "alice@campus.test",
            recipients: &rcpts,
            message,
        })
        .unwrap();
    let seen = seen.recv().unwrap();
    let auth = seen.iter().find(|l| l.starts_with("AUTH PLAIN ")).unwrap();
    let decoded = BASE64.decode(&auth["AUTH PLAIN ".len()..]).unwrap();
    assert_eq!(
        decoded,
        format!("alice@campus.test\0campusmail-webmail\0{SECRET}").as_bytes()
    );
    let auth_at = seen.iter().position(|l| l.starts_with("AUTH")).unwrap();
    let tls_at = seen.iter().position(|l| l == "STARTTLS").unwrap();
    assert!(tls_at < auth_at, "the secret goes only over TLS: {seen:?}");
    assert!(seen.contains(&format!(
        "MAIL FROM:<alice@campus.test> SIZE={}",
        message.len()
    )));
    assert!(seen.contains(&"RCPT TO:<carol@example.org>".to_string()));
    assert!(
        seen.contains(&"Subject: hi\r\n\r\n..starts with a dot\r\nend\r\n".to_string()),
        "dot-stuffed: {seen:?}"
    );
}

#[test]
fn no_starttls_means_no_secret_sent() {
    let cert = make_cert();
    let pinned = cert.der.clone();
    let (addr, seen) = fake_engine(cert, false, ok_answers);
    let rcpts = recipients(&["bob@campus.test"]);
    let err = submitter(addr, pinned)
        .submit(&Submission {
            user: "alice@campus.test",
            sender: "alice@campus.test",
            recipients: &rcpts,
            message: b"x\r\n",
        })
        .unwrap_err();
    assert!(matches!(err, SubmitError::Unavailable(_)), "{err:?}");
    drop(seen);
}

#[test]
fn another_certificate_is_refused_before_auth() {
    let (addr, seen) = fake_engine(make_cert(), true, ok_answers);
    let rcpts = recipients(&["bob@campus.test"]);
    let err = submitter(addr, make_cert().der)
        .submit(&Submission {
            user: "alice@campus.test",
            sender: "alice@campus.test",
            recipients: &rcpts,
            message: b"x\r\n",
        })
        .unwrap_err();
    assert!(
        matches!(&err, SubmitError::Unavailable(text) if text.contains("TLS")),
        "{err:?}"
    );
    drop(seen);
}

#[test]
fn a_refused_recipient_stops_the_whole_message() {
    fn answers(line: &str) -> &'static str {
        match line {
            "RCPT TO:<ghost@campus.test>" => "550 5.1.1 <ghost@campus.test>: no such user here",
            other => ok_answers(other),
        }
    }
    let cert = make_cert();
    let pinned = cert.der.clone();
    let (addr, seen) = fake_engine(cert, true, answers);
    let rcpts = recipients(&["bob@campus.test", "ghost@campus.test"]);
    let err = submitter(addr, pinned)
        .submit(&Submission {
            user: "alice@campus.test",
            sender: "alice@campus.test",
            recipients: &rcpts,
            message: b"x\r\n",
        })
        .unwrap_err();
    match err {
        SubmitError::Recipients(refused) => {
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].0, "ghost@campus.test");
            assert!(refused[0].1.contains("no such user"), "{refused:?}");
        }
        other => panic!("{other:?}"),
    }
    let seen = seen.recv().unwrap();
    assert!(seen.contains(&"RSET".to_string()), "{seen:?}");
    assert!(!seen.contains(&"DATA".to_string()), "{seen:?}");
}

#[test]
fn refusals_say_which_step() {
    fn answers(line: &str) -> &'static str {
        match line {
            l if l.starts_with("MAIL FROM") => "553 5.7.1 Sender address is not yours",
            other => ok_answers(other),
        }
    }
    let cert = make_cert();
    let pinned = cert.der.clone();
    let (addr, _seen) = fake_engine(cert, true, answers);
    let rcpts = recipients(&["bob@campus.test"]);
    let err = submitter(addr, pinned)
        .submit(&Submission {
            user: "alice@campus.test",
            sender: "alice@campus.test",
            recipients: &rcpts,
            message: b"x\r\n",
        })
        .unwrap_err();
    assert_eq!(
        err,
        SubmitError::Refused {
            step: Step::Sender,
            code: 553,
            reply: "553 5.7.1 Sender address is not yours".into()
        }
    );
}

#[test]
fn addresses_that_could_inject_commands_are_refused_before_connecting() {
    // Nothing listens here: the refusal must come before any connection.
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let rcpts = recipients(&["bob@campus.test>\r\nRCPT TO:<evil@example.org"]);
    let err = submitter(addr, make_cert().der)
        .submit(&Submission {
            user: "alice@campus.test",
            sender: "alice@campus.test",
            recipients: &rcpts,
            message: b"x\r\n",
        })
        .unwrap_err();
    assert!(
        matches!(err, SubmitError::Refused { code: 501, .. }),
        "{err:?}"
    );
}

#[test]
fn wildcard_listen_addresses_are_reached_on_loopback() {
    assert_eq!(
        reachable("0.0.0.0:587".parse().unwrap()),
        "127.0.0.1:587".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        reachable("[::]:587".parse().unwrap()),
        "[::1]:587".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        reachable("192.0.2.5:587".parse().unwrap()),
        "192.0.2.5:587".parse::<SocketAddr>().unwrap()
    );
}
