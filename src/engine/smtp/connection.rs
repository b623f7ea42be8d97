//! One peer connection: the byte stream, its buffers, timeouts and the switch
//! to TLS. Shared by the SMTP server, the LMTP server and the LMTP client.
//!
//! Owns: the socket (plain or TLS), an input buffer of bytes read but not yet
//! parsed, and an output buffer of replies not yet sent.
//!
//! Invariants:
//! - Output is flushed only when the peer must wait for it: right before a
//!   read that has to wait for new input, or on an explicit `flush`. So a
//!   pipelined batch of commands gets its replies in one write (RFC 2920 §3).
//! - Every wait on the peer (read, write, TLS handshake) is bounded by the
//!   idle timeout.
//! - Switching to TLS is refused while unread plaintext is buffered, so no
//!   byte sent before the handshake is ever taken as sent over TLS (RFC 3207
//!   §5, CVE-2011-0411).
//! - A line longer than asked for is read to its end and reported as too
//!   long; a peer that sends endless bytes without a line end is cut off.
//!
//! Reads untrusted input: yes (it only frames bytes; parsing is elsewhere).

use std::io;
use std::time::Duration;

use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use smol::Timer;

use super::command::{parse_command, Command, CommandError, MAX_AUTH_LINE};
use super::data::{DataReader, Progress};
use super::reply::Reply;

/// Bytes skipped looking for the end of an overlong line before giving up.
const MAX_DISCARD: usize = 1024 * 1024;
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("the peer was idle too long")]
    Timeout,
    #[error("the peer sent over {MAX_DISCARD} octets without a line end")]
    Flood,
    #[error("the connection cannot switch to TLS now")]
    NotSwitchable,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// A line as read from the peer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The line with its line end (CRLF or bare LF).
    Complete(Vec<u8>),
    /// Longer than allowed; it was read to its end and dropped.
    TooLong,
}

/// A TCP stream, with or without TLS (server side).
pub(crate) type PeerStream = crate::engine::stream::MaybeTls<TlsStream<TcpStream>>;

/// Runs `work`, giving up with `ConnError::Timeout` after `limit`.
pub(crate) async fn with_timeout<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, ConnError>>,
) -> Result<T, ConnError> {
    smol::future::or(work, async {
        Timer::after(limit).await;
        Err(ConnError::Timeout)
    })
    .await
}

/// Performs a server-side TLS handshake on `tcp` within `limit`.
pub(crate) async fn accept_tls(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    limit: Duration,
) -> Result<PeerStream, ConnError> {
    let tls = with_timeout(limit, async { Ok(acceptor.accept(tcp).await?) }).await?;
    Ok(PeerStream::Tls(Box::new(tls)))
}

pub(crate) struct Connection {
    stream: PeerStream,
    input: Vec<u8>,
    /// Start of the unread part of `input`.
    pos: usize,
    output: Vec<u8>,
    idle: Duration,
}

impl Connection {
    pub(crate) fn new(stream: PeerStream, idle: Duration) -> Connection {
        Connection {
            stream,
            input: Vec::new(),
            pos: 0,
            output: Vec::new(),
            idle,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.stream, PeerStream::Tls(_))
    }

    /// True when the peer sent bytes we have not parsed yet.
    pub(crate) fn has_buffered_input(&self) -> bool {
        self.pos < self.input.len()
    }

    /// Queues a reply; it goes out before the next wait for input.
    pub(crate) fn queue(&mut self, reply: &Reply) {
        reply.write_to(&mut self.output);
    }

    /// Queues raw bytes (the LMTP client's commands and message).
    pub(crate) fn queue_bytes(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    pub(crate) async fn flush(&mut self) -> Result<(), ConnError> {
        if self.output.is_empty() {
            return Ok(());
        }
        let output = std::mem::take(&mut self.output);
        let stream = &mut self.stream;
        with_timeout(self.idle, async {
            stream.write_all(&output).await?;
            stream.flush().await?;
            Ok(())
        })
        .await
    }

    /// Flushes pending output and closes the write side, ignoring errors: the
    /// session is over either way.
    pub(crate) async fn close(&mut self) {
        if self.flush().await.is_ok() {
            let stream = &mut self.stream;
            let _ = with_timeout(self.idle, async { Ok(stream.close().await?) }).await;
        }
    }

    /// Waits for more input (flushing replies first, see the invariants).
    async fn fill(&mut self) -> Result<(), ConnError> {
        self.flush().await?;
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
        let read = with_timeout(self.idle, async { Ok(stream.read(buf).await?) }).await;
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                self.input.truncate(start);
                return Err(e);
            }
        };
        self.input.truncate(start + n);
        if n == 0 {
            return Err(ConnError::Closed);
        }
        Ok(())
    }

    /// Reads one line of at most `max` octets, line end included.
    pub(crate) async fn read_line(&mut self, max: usize) -> Result<Line, ConnError> {
        let mut discarded = 0usize;
        loop {
            let unread = &self.input[self.pos..];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                let line = unread[..=i].to_vec();
                self.pos += i + 1;
                if discarded > 0 || line.len() > max {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Complete(line));
            }
            if unread.len() > max {
                discarded += unread.len();
                self.pos = self.input.len();
                if discarded > MAX_DISCARD {
                    return Err(ConnError::Flood);
                }
            }
            self.fill().await?;
        }
    }

    /// Reads and parses the next command; an overlong line is a
    /// `CommandError` like any other malformed command.
    pub(crate) async fn read_command(
        &mut self,
    ) -> Result<Result<Command, CommandError>, ConnError> {
        Ok(match self.read_line(MAX_AUTH_LINE).await? {
            Line::Complete(line) => parse_command(&line),
            Line::TooLong => Err(CommandError::LineTooLong),
        })
    }

    /// Feeds message content to `reader` until it has seen the end of data.
    pub(crate) async fn read_data(&mut self, reader: &mut DataReader) -> Result<(), ConnError> {
        loop {
            if self.has_buffered_input() {
                match reader.feed(&self.input[self.pos..]) {
                    Progress::Done(used) => {
                        self.pos += used;
                        return Ok(());
                    }
                    Progress::NeedMore => self.pos = self.input.len(),
                }
            }
            self.fill().await?;
        }
    }

    /// Switches a plain connection to TLS (after the caller sent 220).
    pub(crate) async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> Result<(), ConnError> {
        if self.has_buffered_input() || !matches!(self.stream, PeerStream::Plain(_)) {
            return Err(ConnError::NotSwitchable);
        }
        self.flush().await?;
        let PeerStream::Plain(tcp) = std::mem::replace(&mut self.stream, PeerStream::Detached)
        else {
            return Err(ConnError::NotSwitchable);
        };
        self.stream = accept_tls(acceptor, tcp, self.idle).await?;
        self.input.clear();
        self.pos = 0;
        Ok(())
    }
}
