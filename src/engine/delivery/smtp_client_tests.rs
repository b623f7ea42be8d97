//! Tests of the SMTP client against a scripted fake SMTP server on
//! 127.0.0.1:0 (a std thread answering canned replies, with STARTTLS from an
//! rcgen certificate).
//!
//! Reads untrusted input: no (tests only).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::smtp_client::{ClientTimeouts, RecipientOutcome, SessionFailure, SmtpClient, TlsPolicy};

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// How the fake server behaves. Recipients' local parts choose their RCPT
/// reply: `temp` → 450, `bad` → 550, anything else → 250.
#[derive(Clone)]
struct Script {
    greeting: &'static str,
    /// `None`: EHLO is refused with 502 (HELO works).
    extensions: Option<Vec<&'static str>>,
    mail: &'static str,
    data: &'static str,
    end_of_data: &'static str,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            greeting: "220 fake.test ESMTP",
            extensions: Some(vec!["PIPELINING", "8BITMIME", "SIZE 100000"]),
            mail: "250 2.1.0 sender ok",
            data: "354 go ahead",
            end_of_data: "250 2.0.0 queued as 42",
            tls: None,
        }
    }
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    /// Command lines, without CRLF; "EHLO (tls)" when EHLO came over TLS.
    commands: Vec<String>,
    /// Each message exactly as on the wire, up to and including ".\r\n".
    messages: Vec<Vec<u8>>,
}

struct FakeSmtp {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl FakeSmtp {
    fn start(script: Script) -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let log = seen.clone();
        std::thread::spawn(move || {
            if let Ok((tcp, _)) = listener.accept() {
                tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                serve(Box::new(tcp), &script, &log);
            }
        });
        FakeSmtp { addr, seen }
    }

    fn commands(&self) -> Vec<String> {
        self.seen.lock().unwrap().commands.clone()
    }

    fn messages(&self) -> Vec<Vec<u8>> {
        self.seen.lock().unwrap().messages.clone()
    }
}

fn serve(stream: Box<dyn Stream>, script: &Script, seen: &Mutex<Seen>) {
    let mut conn = BufReader::new(stream);
    let mut tls = false;
    let send = |conn: &mut BufReader<Box<dyn Stream>>, reply: &str| {
        let _ = conn.get_mut().write_all(format!("{reply}\r\n").as_bytes());
        let _ = conn.get_mut().flush();
    };
    send(&mut conn, script.greeting);
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_string();
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let logged = if verb == "EHLO" && tls {
            "EHLO (tls)".to_string()
        } else {
            line.clone()
        };
        seen.lock().unwrap().commands.push(logged);
        match verb.as_str() {
            "EHLO" => match &script.extensions {
                None => send(&mut conn, "502 5.5.1 no EHLO here"),
                Some(ext) => {
                    let mut ext = ext.clone();
                    if script.tls.is_some() && !tls {
                        ext.push("STARTTLS");
                    }
                    let mut reply = String::from("250-fake.test greets you");
                    for e in ext {
                        reply.push_str(&format!("\r\n250-{e}"));
                    }
                    reply.push_str("\r\n250 ENHANCEDSTATUSCODES");
                    send(&mut conn, &reply);
                }
            },
            "HELO" => send(&mut conn, "250 fake.test"),
            "STARTTLS" => {
                let Some(config) = script.tls.clone() else {
                    send(&mut conn, "502 no");
                    continue;
                };
                send(&mut conn, "220 2.0.0 ready");
                assert!(conn.buffer().is_empty(), "client pipelined past STARTTLS");
                let tcp = conn.into_inner();
                let server = rustls::ServerConnection::new(config).unwrap();
                let tls_stream: Box<dyn Stream> = Box::new(rustls::StreamOwned::new(server, tcp));
                conn = BufReader::new(tls_stream);
                tls = true;
            }
            "MAIL" => send(&mut conn, script.mail),
            "RCPT" => {
                let local = line
                    .split('<')
                    .nth(1)
                    .and_then(|a| a.split('@').next())
                    .unwrap_or("");
                send(
                    &mut conn,
                    match local {
                        "temp" => "450 4.2.1 mailbox busy, try later",
                        "bad" => "550 5.1.1 no such user here",
                        _ => "250 2.1.5 recipient ok",
                    },
                )
            }
            "DATA" => {
                send(&mut conn, script.data);
                if !script.data.starts_with("354") {
                    continue;
                }
                let mut message = Vec::new();
                loop {
                    let mut data_line = Vec::new();
                    if conn.read_until(b'\n', &mut data_line).unwrap_or(0) == 0 {
                        return;
                    }
                    message.extend_from_slice(&data_line);
                    if data_line == b".\r\n" {
                        break;
                    }
                }
                seen.lock().unwrap().messages.push(message);
                send(&mut conn, script.end_of_data);
            }
            "RSET" | "NOOP" => send(&mut conn, "250 2.0.0 ok"),
            "QUIT" => {
                send(&mut conn, "221 2.0.0 bye");
                return;
            }
            _ => send(&mut conn, "500 5.5.2 what?"),
        }
    }
}

fn timeouts() -> ClientTimeouts {
    ClientTimeouts::uniform(Duration::from_secs(10))
}

fn connect(server: &FakeSmtp, tls: TlsPolicy) -> Result<SmtpClient, SessionFailure> {
    smol::block_on(SmtpClient::connect(
        server.addr,
        "localhost",
        "out.campus.test",
        tls,
        timeouts(),
    ))
}

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

fn delivers(pipelining: bool) {
    let mut script = Script::default();
    if !pipelining {
        script.extensions = Some(vec!["8BITMIME", "SIZE 100000"]);
    }
    let server = FakeSmtp::start(script);
    let mut client = connect(&server, TlsPolicy::Opportunistic).unwrap();
    assert_eq!(client.extensions().pipelining, pipelining);
    assert!(client.extensions().enhanced_status_codes);
    assert!(!client.is_tls());
    assert_eq!(client.peer(), "localhost[127.0.0.1]");
    let outcomes = smol::block_on(client.send(
        "sender@campus.test",
        &rcpts(&["a@far.test", "b@far.test"]),
        MESSAGE,
        false,
    ))
    .unwrap();
    assert_eq!(outcomes.len(), 2);
    for outcome in &outcomes {
        let RecipientOutcome::Delivered(text) = outcome else {
            panic!("{outcomes:?}");
        };
        assert!(text.contains("250 2.0.0 queued as 42"), "{text}");
    }
    smol::block_on(client.quit());
    assert_eq!(
        server.commands(),
        [
            "EHLO out.campus.test",
            "MAIL FROM:<sender@campus.test> SIZE=22",
            "RCPT TO:<a@far.test>",
            "RCPT TO:<b@far.test>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(
        server.messages(),
        [b"Subject: hi\r\n\r\nhello\r\n.\r\n".to_vec()]
    );
}

#[test]
fn delivers_with_pipelining() {
    delivers(true);
}

#[test]
fn delivers_without_pipelining() {
    delivers(false);
}

#[test]
fn mixed_recipient_results() {
    for pipelining in [true, false] {
        let mut script = Script::default();
        if !pipelining {
            script.extensions = Some(vec![]);
        }
        let server = FakeSmtp::start(script);
        let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
        let outcomes = smol::block_on(client.send(
            "s@campus.test",
            &rcpts(&["ok@far.test", "temp@far.test", "bad@far.test"]),
            MESSAGE,
            false,
        ))
        .unwrap();
        assert!(matches!(&outcomes[0], RecipientOutcome::Delivered(_)));
        let RecipientOutcome::Temporary(temp) = &outcomes[1] else {
            panic!("{outcomes:?}");
        };
        assert!(temp.contains("450 4.2.1 mailbox busy"), "{temp}");
        let RecipientOutcome::Permanent(bad) = &outcomes[2] else {
            panic!("{outcomes:?}");
        };
        assert_eq!(
            bad,
            "host localhost[127.0.0.1] said: 550 5.1.1 no such user here (in reply to RCPT TO)"
        );
        assert!(client.is_usable());
    }
}

#[test]
fn greeting_4xx_is_temporary_and_5xx_permanent() {
    let server = FakeSmtp::start(Script {
        greeting: "421 4.3.2 busy, come back later",
        ..Script::default()
    });
    let Err(SessionFailure::Temporary(text)) = connect(&server, TlsPolicy::Opportunistic) else {
        panic!("4xx greeting accepted");
    };
    assert!(text.contains("421 4.3.2 busy"), "{text}");

    let server = FakeSmtp::start(Script {
        greeting: "554 5.7.1 no service for you",
        ..Script::default()
    });
    let Err(SessionFailure::Permanent(text)) = connect(&server, TlsPolicy::Opportunistic) else {
        panic!("5xx greeting accepted");
    };
    assert!(text.contains("554 5.7.1 no service"), "{text}");
}

#[test]
fn helo_when_ehlo_is_refused() {
    let server = FakeSmtp::start(Script {
        extensions: None,
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Opportunistic).unwrap();
    assert!(!client.extensions().pipelining);
    let outcomes =
        smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), MESSAGE, false))
            .unwrap();
    assert!(matches!(&outcomes[0], RecipientOutcome::Delivered(_)));
    let commands = server.commands();
    assert_eq!(
        commands[..2],
        ["EHLO out.campus.test", "HELO out.campus.test"]
    );
    assert_eq!(commands[2], "MAIL FROM:<s@campus.test>");
}

#[test]
fn mail_from_rejection_applies_to_everyone_and_resets() {
    for (reply, permanent) in [
        ("550 5.7.1 sender refused", true),
        ("451 4.3.0 later", false),
    ] {
        let server = FakeSmtp::start(Script {
            mail: reply,
            ..Script::default()
        });
        let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
        let result = smol::block_on(client.send(
            "s@campus.test",
            &rcpts(&["a@far.test", "b@far.test"]),
            MESSAGE,
            false,
        ));
        match result {
            Err(SessionFailure::Permanent(text)) if permanent => {
                assert!(text.contains("550 5.7.1 sender refused"), "{text}")
            }
            Err(SessionFailure::Temporary(text)) if !permanent => {
                assert!(text.contains("451 4.3.0"), "{text}")
            }
            other => panic!("{reply}: {other:?}"),
        }
        assert!(client.is_usable());
        assert_eq!(server.commands().last().map(String::as_str), Some("RSET"));
        assert!(server.messages().is_empty());
    }
}

#[test]
fn final_4xx_defers_the_accepted_recipients_only() {
    let server = FakeSmtp::start(Script {
        end_of_data: "451 4.3.0 disk trouble",
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let outcomes = smol::block_on(client.send(
        "s@campus.test",
        &rcpts(&["a@far.test", "bad@far.test"]),
        MESSAGE,
        false,
    ))
    .unwrap();
    let RecipientOutcome::Temporary(text) = &outcomes[0] else {
        panic!("{outcomes:?}");
    };
    assert!(
        text.contains("451 4.3.0 disk trouble (in reply to end of DATA)"),
        "{text}"
    );
    assert!(matches!(&outcomes[1], RecipientOutcome::Permanent(_)));
}

#[test]
fn data_refused_after_pipelined_recipients() {
    let server = FakeSmtp::start(Script {
        data: "554 5.5.1 no valid recipients",
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let outcomes =
        smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), MESSAGE, false))
            .unwrap();
    assert!(matches!(&outcomes[0], RecipientOutcome::Permanent(t) if t.contains("554 5.5.1")));
    assert_eq!(server.commands().last().map(String::as_str), Some("RSET"));
}

#[test]
fn no_recipient_accepted_means_no_data() {
    let server = FakeSmtp::start(Script {
        extensions: Some(vec![]),
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let outcomes = smol::block_on(client.send(
        "s@campus.test",
        &rcpts(&["bad@far.test", "temp@far.test"]),
        MESSAGE,
        false,
    ))
    .unwrap();
    assert!(matches!(&outcomes[0], RecipientOutcome::Permanent(_)));
    assert!(matches!(&outcomes[1], RecipientOutcome::Temporary(_)));
    assert!(!server.commands().contains(&"DATA".to_string()));
    assert_eq!(server.commands().last().map(String::as_str), Some("RSET"));
}

#[test]
fn a_silent_server_is_a_temporary_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        // Hold the connection open without a word until the client leaves.
        let mut buf = [0u8; 64];
        let mut tcp: TcpStream = tcp;
        while matches!(tcp.read(&mut buf), Ok(n) if n > 0) {}
    });
    let result = smol::block_on(SmtpClient::connect(
        addr,
        "localhost",
        "out.campus.test",
        TlsPolicy::Opportunistic,
        ClientTimeouts::uniform(Duration::from_millis(300)),
    ));
    let Err(SessionFailure::Temporary(text)) = result else {
        panic!("silent server accepted");
    };
    assert!(text.contains("greeting"), "{text}");
    held.join().unwrap();
}

#[test]
fn refused_connection_is_temporary() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(matches!(
        smol::block_on(SmtpClient::connect(
            addr,
            "localhost",
            "out.campus.test",
            TlsPolicy::Opportunistic,
            timeouts(),
        )),
        Err(SessionFailure::Temporary(_))
    ));
}

#[test]
fn smtputf8_needed_but_not_offered_fails_before_mail_from() {
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    for (from, to, flag) in [
        ("s@campus.test", "a@far.test", true),
        ("s@campus.test", "철수@far.test", false),
    ] {
        let result = smol::block_on(client.send(from, &rcpts(&[to]), MESSAGE, flag));
        let Err(SessionFailure::Permanent(text)) = result else {
            panic!("{result:?}");
        };
        assert!(text.starts_with("5.6.7"), "{text}");
    }
    assert!(client.is_usable());
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
}

#[test]
fn too_big_for_the_server_fails_before_mail_from() {
    let server = FakeSmtp::start(Script {
        extensions: Some(vec!["SIZE 10"]),
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let result =
        smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), MESSAGE, false));
    let Err(SessionFailure::Permanent(text)) = result else {
        panic!("{result:?}");
    };
    assert!(text.starts_with("5.3.4"), "{text}");
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
}

#[test]
fn eight_bit_body_needs_8bitmime() {
    let body = "Subject: 안녕\r\n\r\n안녕하세요\r\n".as_bytes();
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), body, false)).unwrap();
    assert!(server
        .commands()
        .iter()
        .any(|c| c.ends_with("BODY=8BITMIME")));

    let server = FakeSmtp::start(Script {
        extensions: Some(vec!["PIPELINING"]),
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let result = smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), body, false));
    assert!(matches!(result, Err(SessionFailure::Permanent(t)) if t.starts_with("5.6.3")));
}

#[test]
fn dot_stuffing_and_final_crlf_on_the_wire() {
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let message = b"Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nlast line";
    smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), message, false)).unwrap();
    assert_eq!(
        server.messages(),
        [b"Subject: dots\r\n\r\n..leading\r\n...two\r\n..\r\nlast line\r\n.\r\n".to_vec()]
    );
}

#[test]
fn two_transactions_on_one_connection() {
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    for to in ["a@far.test", "b@far.test"] {
        let outcomes =
            smol::block_on(client.send("s@campus.test", &rcpts(&[to]), MESSAGE, false)).unwrap();
        assert!(matches!(&outcomes[0], RecipientOutcome::Delivered(_)));
    }
    smol::block_on(client.quit());
    assert_eq!(server.messages().len(), 2);
    let mails = server
        .commands()
        .iter()
        .filter(|c| c.starts_with("MAIL"))
        .count();
    assert_eq!(mails, 2);
}

#[test]
fn addresses_with_line_breaks_never_reach_the_wire() {
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let outcomes = smol::block_on(client.send(
        "s@campus.test",
        &rcpts(&["a@far.test\r\nRCPT TO:<evil@far.test>", "b@far.test"]),
        MESSAGE,
        false,
    ))
    .unwrap();
    assert!(matches!(&outcomes[0], RecipientOutcome::Permanent(_)));
    assert!(matches!(&outcomes[1], RecipientOutcome::Delivered(_)));
    assert!(!server.commands().iter().any(|c| c.contains("evil")));
}

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = made.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    )
}

#[test]
fn starttls_then_ehlo_again() {
    let server = FakeSmtp::start(Script {
        tls: Some(tls_server_config()),
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Opportunistic).unwrap();
    assert!(client.is_tls());
    // The extensions are those said over TLS (no STARTTLS any more).
    assert!(!client.extensions().starttls);
    let outcomes =
        smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), MESSAGE, false))
            .unwrap();
    assert!(matches!(&outcomes[0], RecipientOutcome::Delivered(_)));
    smol::block_on(client.quit());
    assert_eq!(
        server.commands()[..3],
        ["EHLO out.campus.test", "STARTTLS", "EHLO (tls)"]
    );
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn required_tls_without_starttls_is_temporary() {
    let server = FakeSmtp::start(Script::default());
    let result = connect(&server, TlsPolicy::Required);
    assert!(matches!(result, Err(SessionFailure::Temporary(t)) if t.contains("STARTTLS")));
}

#[test]
fn disabled_tls_ignores_starttls() {
    let server = FakeSmtp::start(Script {
        tls: Some(tls_server_config()),
        ..Script::default()
    });
    let client = connect(&server, TlsPolicy::Disabled).unwrap();
    assert!(!client.is_tls());
    assert!(client.extensions().starttls);
}
