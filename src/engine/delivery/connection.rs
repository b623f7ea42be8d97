//! One outbound SMTP connection: the socket (plain, then maybe TLS), the
//! buffers, reading replies and writing commands, each wait bounded.
//!
//! The server side has `engine::smtp::connection`; this is its client twin
//! (a client TLS stream, replies instead of commands). Both use the same
//! `with_timeout` and `ConnError`.
//!
//! Owns: the TCP socket, an input buffer of reply bytes not yet parsed and
//! an output buffer of commands not yet sent.
//!
//! Invariants:
//! - Output is flushed only right before waiting for a reply (or on an
//!   explicit flush), so a pipelined group goes out in one write (RFC 2920).
//! - Every wait on the server (connect, write, read, handshake) has a limit.
//! - A reply line longer than `MAX_REPLY_LINE` is an error, never buffered
//!   without bound.
//! - The switch to TLS is refused when the server sent bytes after its 220
//!   to STARTTLS: they would be taken as coming over TLS (RFC 3207 §5; the
//!   client-side twin of CVE-2011-0411).
//!
//! Reads untrusted input: yes, the remote server's replies and handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use super::wire::{ReplyAssembler, ServerReply, MAX_REPLY_LINE};
use crate::engine::smtp::connection::{with_timeout, ConnError};

const READ_CHUNK: usize = 16 * 1024;
/// Message data goes out in blocks of this size, each with its own limit
/// (RFC 5321 §4.5.3.2.5: the data block timeout).
const DATA_BLOCK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("{0}")]
    Conn(#[from] ConnError),
    #[error("the server sent a malformed or overlong reply")]
    MalformedReply,
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("the server sent data before the TLS handshake")]
    PlaintextInjection,
}

/// Our side of an outbound session, with or without TLS (client side).
type ClientStream = crate::engine::stream::MaybeTls<TlsStream<TcpStream>>;

pub(crate) struct ClientConnection {
    stream: ClientStream,
    input: Vec<u8>,
    /// Start of the unread part of `input`.
    pos: usize,
    output: Vec<u8>,
}

impl ClientConnection {
    pub(crate) async fn connect(
        addr: SocketAddr,
        limit: Duration,
    ) -> Result<ClientConnection, LinkError> {
        let tcp = with_timeout(limit, async { Ok(TcpStream::connect(addr).await?) }).await?;
        // Commands are small and we wait for their replies: do not let
        // Nagle hold them back.
        let _ = tcp.set_nodelay(true);
        Ok(ClientConnection {
            stream: ClientStream::Plain(tcp),
            input: Vec::new(),
            pos: 0,
            output: Vec::new(),
        })
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.stream, ClientStream::Tls(_))
    }

    /// Queues one command line; CRLF is added.
    pub(crate) fn queue_line(&mut self, line: &str) {
        self.output.extend_from_slice(line.as_bytes());
        self.output.extend_from_slice(b"\r\n");
    }

    pub(crate) async fn flush(&mut self, limit: Duration) -> Result<(), LinkError> {
        if self.output.is_empty() {
            return Ok(());
        }
        let output = std::mem::take(&mut self.output);
        let stream = &mut self.stream;
        with_timeout(limit, async {
            stream.write_all(&output).await?;
            stream.flush().await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Sends `data` (already dot-stuffed) in blocks, each within `limit`.
    pub(crate) async fn send_data(
        &mut self,
        data: &[u8],
        limit: Duration,
    ) -> Result<(), LinkError> {
        self.flush(limit).await?;
        for block in data.chunks(DATA_BLOCK) {
            let stream = &mut self.stream;
            with_timeout(limit, async { Ok(stream.write_all(block).await?) }).await?;
        }
        Ok(())
    }

    /// Flushes what is queued, then reads one complete reply within `limit`.
    pub(crate) async fn read_reply(&mut self, limit: Duration) -> Result<ServerReply, LinkError> {
        self.flush(limit).await?;
        let mut assembler = ReplyAssembler::default();
        loop {
            let line = self.read_line(limit).await?;
            if let Some(reply) = assembler
                .feed(&line)
                .map_err(|_| LinkError::MalformedReply)?
            {
                return Ok(reply);
            }
        }
    }

    async fn read_line(&mut self, limit: Duration) -> Result<Vec<u8>, LinkError> {
        loop {
            let unread = &self.input[self.pos..];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                if i + 1 > MAX_REPLY_LINE {
                    return Err(LinkError::MalformedReply);
                }
                let line = unread[..=i].to_vec();
                self.pos += i + 1;
                return Ok(line);
            }
            if unread.len() > MAX_REPLY_LINE {
                return Err(LinkError::MalformedReply);
            }
            self.fill(limit).await?;
        }
    }

    async fn fill(&mut self, limit: Duration) -> Result<(), LinkError> {
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > READ_CHUNK {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.input.len();
        self.input.resize(start + READ_CHUNK, 0);
        let (stream, buf) = (&mut self.stream, &mut self.input[start..]);
        let read = with_timeout(limit, async { Ok(stream.read(buf).await?) }).await;
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                self.input.truncate(start);
                return Err(e.into());
            }
        };
        self.input.truncate(start + n);
        if n == 0 {
            return Err(ConnError::Closed.into());
        }
        Ok(())
    }

    /// Switches to TLS after the server's 220 to STARTTLS (RFC 3207 §4).
    pub(crate) async fn start_tls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        limit: Duration,
    ) -> Result<(), LinkError> {
        if self.pos < self.input.len() {
            return Err(LinkError::PlaintextInjection);
        }
        self.flush(limit).await?;
        let ClientStream::Plain(tcp) = std::mem::replace(&mut self.stream, ClientStream::Detached)
        else {
            return Err(ConnError::NotSwitchable.into());
        };
        let connector = TlsConnector::from(config);
        let handshake = with_timeout(limit, async {
            connector
                .connect(server_name, tcp)
                .await
                .map_err(ConnError::Io)
        })
        .await;
        match handshake {
            Ok(tls) => {
                self.stream = ClientStream::Tls(Box::new(tls));
                self.input.clear();
                self.pos = 0;
                Ok(())
            }
            Err(ConnError::Io(e)) => Err(LinkError::Tls(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Flushes what is queued and closes, ignoring errors: the session is
    /// over either way.
    pub(crate) async fn close(&mut self, limit: Duration) {
        if self.flush(limit).await.is_ok() {
            let stream = &mut self.stream;
            let _ = with_timeout(limit, async { Ok(stream.close().await?) }).await;
        }
    }
}
