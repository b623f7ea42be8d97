//! Peers for outbound delivery tests: a real DNS server (Debian's dnsmasq)
//! serving a test zone on loopback, and a scriptable SMTP sink that records
//! exactly the messages it acknowledged with 250, and can answer 4xx/5xx or
//! hang to play a broken server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// dnsmasq on 127.0.0.1:<port> with `records` given as dnsmasq options,
/// e.g. `--mx-host=remote.test,mx.remote.test,10`.
pub struct Dns {
    child: Child,
    pub port: u16,
}

impl Dns {
    pub fn start(records: &[String]) -> Dns {
        let port = super::free_udp_port();
        let child = Command::new("/usr/sbin/dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--log-facility=/dev/null",
                // No shared pid file: several test servers run at once.
                "--pid-file=",
                // Every name not in the zone is NXDOMAIN, as on the real
                // internet (not REFUSED), and nothing is ever forwarded.
                "--address=/#/",
            ])
            .arg(format!("--port={port}"))
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dnsmasq is installed (apt-get install dnsmasq-base)");
        // dnsmasq binds before it serves; give it a moment by probing TCP.
        super::wait_until(10, || {
            TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        })
        .expect("dnsmasq did not start");
        Dns { child, port }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the sink answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkMode {
    /// 250 to everything.
    Accept,
    /// `451 4.3.0` to every RCPT.
    TempFailRcpt,
    /// `550 5.1.1` to every RCPT.
    RejectRcpt,
    /// Accepts the connection and never says a word.
    Silent,
    /// Reads the message after DATA, then never answers it.
    HangAfterData,
}

#[derive(Clone, Debug)]
pub struct SinkMessage {
    pub sender: String,
    pub recipients: Vec<String>,
    pub data: String,
}

/// A scriptable SMTP server on 127.0.0.1.
pub struct Sink {
    pub port: u16,
    mode: Arc<Mutex<SinkMode>>,
    pub received: Arc<Mutex<Vec<SinkMessage>>>,
}

impl Sink {
    pub fn start(mode: SinkMode) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (m, r) = (mode.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (m, r) = (m.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &m, &r);
                });
            }
        });
        Sink {
            port,
            mode,
            received,
        }
    }

    pub fn set_mode(&self, mode: SinkMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn messages(&self) -> Vec<SinkMessage> {
        self.received.lock().unwrap().clone()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn serve(
    stream: TcpStream,
    mode: &Mutex<SinkMode>,
    received: &Mutex<Vec<SinkMessage>>,
) -> std::io::Result<()> {
    let current = || *mode.lock().unwrap();
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    if current() == SinkMode::Silent {
        std::thread::sleep(Duration::from_secs(120));
        return Ok(());
    }
    out.write_all(b"220 sink.test ESMTP test sink\r\n")?;
    let (mut sender, mut recipients) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 100000000".to_string()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 ok".into()
        } else if upper.starts_with("RSET") {
            sender.clear();
            recipients.clear();
            "250 ok".into()
        } else if upper.starts_with("MAIL FROM:") {
            sender = line[10..].trim().to_string();
            "250 2.1.0 ok".into()
        } else if upper.starts_with("RCPT TO:") {
            match current() {
                SinkMode::TempFailRcpt => "451 4.3.0 try again later".into(),
                SinkMode::RejectRcpt => "550 5.1.1 no such user here".into(),
                _ => {
                    recipients.push(line[8..].trim().to_string());
                    "250 2.1.5 ok".into()
                }
            }
        } else if upper.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            if current() == SinkMode::HangAfterData {
                std::thread::sleep(Duration::from_secs(120));
                return Ok(());
            }
            out.write_all(b"250 2.0.0 queued\r\n")?;
            received.lock().unwrap().push(SinkMessage {
                sender: std::mem::take(&mut sender),
                recipients: std::mem::take(&mut recipients),
                data,
            });
            continue;
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            "502 5.5.2 not implemented".into()
        };
        out.write_all(format!("{reply}\r\n").as_bytes())?;
    }
}
