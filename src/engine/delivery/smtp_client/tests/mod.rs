//! Tests of the SMTP client against a scripted fake SMTP server on
//! 127.0.0.1:0 (a std thread answering canned replies, with STARTTLS from an
//! rcgen certificate): sessions here, transactions in `transactions`.
//!
//! Reads untrusted input: no (tests only).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod transactions;

use super::{ClientTimeouts, RecipientOutcome, SessionFailure, SmtpClient, TlsPolicy};

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

/// A server that sends `bytes` on connect, then waits for the client to go.
fn junk_server(bytes: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        let _ = tcp.write_all(&bytes);
        let mut buf = [0u8; 256];
        while matches!(tcp.read(&mut buf), Ok(n) if n > 0) {}
    });
    addr
}

#[test]
fn junk_replies_are_temporary_failures() {
    let many_lines = "220-more\r\n".repeat(500);
    for junk in [
        b"hello there\r\n".to_vec(),
        b"\xff\x00\xfe\r\n".to_vec(),
        b"2\r\n".to_vec(),
        vec![b'2'; 10_000],
        [b"220 ".as_slice(), &[b'x'; 10_000], b"\r\n"].concat(),
        many_lines.into_bytes(),
    ] {
        let addr = junk_server(junk.clone());
        let result = smol::block_on(SmtpClient::connect(
            addr,
            "localhost",
            "out.campus.test",
            TlsPolicy::Opportunistic,
            ClientTimeouts::uniform(Duration::from_secs(5)),
        ));
        assert!(
            matches!(result, Err(SessionFailure::Temporary(_))),
            "{:?}",
            String::from_utf8_lossy(&junk[..junk.len().min(40)])
        );
    }
}

/// A server that sends `replies[0]` as its greeting and answers each
/// chunk of bytes it reads (a command, or a TLS ClientHello) with the next
/// reply, then closes.
fn canned_server(replies: &'static [&'static str]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        for reply in replies {
            if tcp.write_all(reply.as_bytes()).is_err() {
                return;
            }
            if tcp.read(&mut buf).unwrap_or(0) == 0 {
                return;
            }
        }
    });
    addr
}

fn connect_to(addr: SocketAddr, tls: TlsPolicy) -> Result<SmtpClient, SessionFailure> {
    smol::block_on(SmtpClient::connect(
        addr,
        "localhost",
        "out.campus.test",
        tls,
        timeouts(),
    ))
}

#[test]
fn plaintext_after_the_starttls_reply_is_refused() {
    // RFC 3207 §5: bytes sent before the handshake must not be taken as
    // coming over TLS.
    let addr = canned_server(&[
        "220 fake.test\r\n",
        "250-fake.test\r\n250 STARTTLS\r\n",
        "220 go ahead\r\n250 injected\r\n",
    ]);
    let result = connect_to(addr, TlsPolicy::Opportunistic);
    let Err(failure) = result else {
        panic!("injection accepted");
    };
    assert!(
        matches!(&failure, SessionFailure::Temporary(t) if t.contains("before the TLS handshake")),
        "{failure:?}"
    );
}

#[test]
fn a_failed_handshake_is_temporary_and_recognisable() {
    // The server says 220 to STARTTLS and then speaks no TLS at all.
    let addr = canned_server(&[
        "220 fake.test\r\n",
        "250-fake.test\r\n250 STARTTLS\r\n",
        "220 go ahead\r\n",
        "this is not TLS\r\n",
    ]);
    let Err(failure) = connect_to(addr, TlsPolicy::Opportunistic) else {
        panic!("handshake with a non-TLS server succeeded");
    };
    assert!(failure.is_tls_handshake(), "{failure:?}");
}

#[test]
fn refused_starttls_continues_in_plain_text_unless_required() {
    let replies: &'static [&'static str] = &[
        "220 fake.test\r\n",
        "250-fake.test\r\n250 STARTTLS\r\n",
        "454 4.7.0 TLS not available now\r\n",
        "221 bye\r\n",
    ];
    let client = connect_to(canned_server(replies), TlsPolicy::Opportunistic).unwrap();
    assert!(!client.is_tls());
    smol::block_on(client.quit());
    let result = connect_to(canned_server(replies), TlsPolicy::Required);
    assert!(matches!(result, Err(SessionFailure::Temporary(t)) if t.contains("454 4.7.0")));
}
