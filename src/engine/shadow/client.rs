//! The origin's side: one thread that keeps a mutual-TLS connection to the
//! peer engine and sends it copies of what we accept, what we finished,
//! and a ping when idle.
//!
//! Requests arrive on a channel; the thread writes every request waiting
//! at that moment, flushes once, and then reads one `Held` per `Hold` in
//! order, so many sessions accepting at once share round trips. While the
//! link is down nothing waits for it: `connected` is false, holds are
//! answered "alone" at once, and finished-message notices are dropped (the
//! next `Hello` lists what is still queued, which says the same).
//!
//! On each connection the first exchange reconciles: our queued ids go in
//! `Hello`; the peer's `Welcome` names our messages it delivered itself
//! while we were silent, which `on_taken` drops from our queue.
//!
//! Reads untrusted input: only frames from the peer, after checking its
//! certificate.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::current_pair;
use super::frames::ShadowFrame;
use crate::config::Config;
use crate::engine::queue::{Recipient, Spool};
use crate::replication::pki::{fingerprint, PairFiles};
use crate::replication::wire::{self, WireError};

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// How often an idle link pings, and how often a down link is retried.
const PING: Duration = Duration::from_secs(1);
/// Holds written before their answers are read.
const MAX_BATCH: usize = 64;

pub enum Request {
    Hold {
        id: String,
        file: Vec<u8>,
        held: smol::channel::Sender<()>,
    },
    Progress {
        id: String,
        recipients: Vec<(usize, Recipient)>,
    },
    Done(String),
}

/// Called with the ids the peer took over (drop them from our queue); and
/// with an empty list after every reconciliation.
pub type OnTaken = Box<dyn Fn(&[String]) + Send>;

/// What the thread needs from the rest of the engine.
pub struct OriginContext {
    pub config: Arc<Config>,
    pub spool: Arc<Spool>,
    pub connected: Arc<AtomicBool>,
    pub on_taken: OnTaken,
}

pub fn run(ctx: OriginContext, requests: Receiver<Request>) {
    let files = PairFiles::new(&ctx.config.node.data_dir);
    let mut last_error = String::new();
    loop {
        let pair = current_pair(&ctx.config);
        let linked = match pair.engine_peer_addr() {
            Some(addr) if !pair.peer_name.is_empty() => {
                connect(&files, &addr, &pair.peer_name, &pair.peer_fingerprint)
                    .and_then(|tls| session(&ctx, tls, &requests))
            }
            _ => Err(WireError::Bad("no peer named in appliance.toml yet".into())),
        };
        ctx.connected.store(false, Ordering::SeqCst);
        if let Err(e) = linked {
            let text = e.to_string();
            if text != last_error {
                tracing::info!(error = %text, "shadow link to the peer engine is down; accepting mail alone");
                last_error = text;
            }
        }
        // Down: answer what waits (dropping a hold's sender says "alone").
        match requests.recv_timeout(PING) {
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while requests.try_recv().is_ok() {}
    }
}

fn connect(
    files: &PairFiles,
    addr: &str,
    name: &str,
    expected_fingerprint: &str,
) -> Result<Tls, WireError> {
    let socket = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| WireError::Bad(format!("{addr} does not resolve")))?;
    let tcp = TcpStream::connect_timeout(&socket, Duration::from_secs(3))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_nodelay(true)?;
    let config = files
        .client_config()
        .map_err(|e| WireError::Bad(e.to_string()))?;
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| WireError::Bad(format!("peer name {name}: {e}")))?;
    let conn = ClientConnection::new(config, server_name)
        .map_err(|e| WireError::Bad(format!("TLS setup: {e}")))?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| WireError::Bad(format!("TLS handshake with {addr}: {e}")))?;
    }
    let presented = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first().map(|c| fingerprint(c.as_ref())))
        .ok_or_else(|| WireError::Bad("the peer engine presented no certificate".into()))?;
    if !expected_fingerprint.is_empty() && presented != expected_fingerprint {
        return Err(WireError::Bad(format!(
            "the peer engine's certificate {presented} is not {expected_fingerprint}"
        )));
    }
    Ok(tls)
}

/// One connection: reconcile, then serve requests until an error.
fn session(
    ctx: &OriginContext,
    mut tls: Tls,
    requests: &Receiver<Request>,
) -> Result<(), WireError> {
    let queued = ctx
        .spool
        .queued_ids()
        .map_err(|e| WireError::Bad(e.to_string()))?
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    wire::write(
        &mut tls,
        &ShadowFrame::Hello {
            node: ctx.config.node.name.clone(),
            queued,
        },
        None,
    )?;
    tls.flush()?;
    let taken = match wire::read(&mut tls)? {
        ShadowFrame::Welcome { taken, .. } => taken,
        ShadowFrame::Refused { reason } => {
            return Err(WireError::Bad(format!("the peer engine refused: {reason}")))
        }
        other => return Err(WireError::Bad(format!("expected welcome, got {other:?}"))),
    };
    (ctx.on_taken)(&taken);
    if !taken.is_empty() {
        wire::write(&mut tls, &ShadowFrame::TakenSeen { ids: taken }, None)?;
        tls.flush()?;
    }
    ctx.connected.store(true, Ordering::SeqCst);
    tracing::info!("shadow link to the peer engine is up");
    loop {
        let first = match requests.recv_timeout(PING) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                wire::write(&mut tls, &ShadowFrame::Ping, None)?;
                tls.flush()?;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut waiting = Vec::new();
        let mut done = Vec::new();
        for request in batch {
            match request {
                Request::Hold { id, file, held } => {
                    let len = file.len() as u64;
                    wire::write(
                        &mut tls,
                        &ShadowFrame::Hold {
                            id: id.clone(),
                            len,
                        },
                        Some(&file),
                    )?;
                    waiting.push((id, held));
                }
                Request::Progress { id, recipients } => {
                    wire::write(&mut tls, &ShadowFrame::Progress { id, recipients }, None)?
                }
                Request::Done(id) => done.push(id),
            }
        }
        if !done.is_empty() {
            wire::write(&mut tls, &ShadowFrame::Done { ids: done }, None)?;
        }
        tls.flush()?;
        for (id, held) in waiting {
            match wire::read(&mut tls)? {
                ShadowFrame::Held { id: got } if got == id => {
                    let _ = held.try_send(());
                }
                other => return Err(WireError::Bad(format!("expected held {id}, got {other:?}"))),
            }
        }
    }
}
