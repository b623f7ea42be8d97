//! Test support: a raw, blocking SMTP/LMTP client that sends exact bytes and
//! reads replies as a peer does, and a fake store behind the LMTP server.
//!
//! Reads untrusted input: no (tests only).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use crate::mailbox::lmtp::{DeliveryFailure, LocalDelivery, RecipientCheck};

pub(crate) struct RawClient<S: Read + Write = TcpStream> {
    stream: BufReader<S>,
}

impl RawClient<TcpStream> {
    pub(crate) fn connect(addr: SocketAddr) -> RawClient<TcpStream> {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        RawClient::new(tcp)
    }
}

impl<S: Read + Write> RawClient<S> {
    pub(crate) fn new(stream: S) -> RawClient<S> {
        RawClient {
            stream: BufReader::new(stream),
        }
    }

    /// The underlying stream; only valid when no reply bytes are buffered.
    pub(crate) fn into_inner(self) -> S {
        assert!(self.stream.buffer().is_empty(), "unread reply bytes");
        self.stream.into_inner()
    }

    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).unwrap();
        self.stream.get_mut().flush().unwrap();
    }

    /// Reads one reply: its code and the text of each line.
    pub(crate) fn reply(&mut self) -> (u16, Vec<String>) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.stream.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "connection closed while waiting for a reply; got {lines:?}"
            );
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let code: u16 = line[..3].parse().unwrap();
            lines.push(line[4..line.len() - 2].to_string());
            if line.as_bytes()[3] == b' ' {
                return (code, lines);
            }
        }
    }

    pub(crate) fn command(&mut self, line: &str) -> (u16, Vec<String>) {
        self.send_raw(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// True when the server closed the connection (EOF or reset).
    pub(crate) fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.stream.read(&mut buf), Ok(0) | Err(_))
    }
}

/// A store that keeps delivered messages in memory. By local part: `ghost`
/// is unknown, `old` is disabled, `full` fails temporarily, `boom` panics.
#[derive(Default)]
pub(crate) struct FakeStore {
    pub(crate) stored: Mutex<Vec<(String, Vec<u8>)>>,
}

impl LocalDelivery for FakeStore {
    fn check_recipient(&self, address: &str) -> RecipientCheck {
        match address.split('@').next() {
            Some("ghost") => RecipientCheck::Unknown,
            Some("old") => RecipientCheck::Disabled,
            _ => RecipientCheck::Accept,
        }
    }

    fn deliver(&self, recipient: &str, message: &[u8]) -> Result<(), DeliveryFailure> {
        match recipient.split('@').next() {
            Some("full") => Err(DeliveryFailure::Temporary("mailbox busy".into())),
            Some("boom") => panic!("a bug in the store"),
            _ => {
                self.stored
                    .lock()
                    .unwrap()
                    .push((recipient.into(), message.to_vec()));
                Ok(())
            }
        }
    }
}
