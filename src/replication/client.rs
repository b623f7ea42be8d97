//! The puller: connects to the peer's link server, asks for every op past
//! what our log already holds, applies them, and follows.
//!
//! Invariants:
//! - positions come from our own log (`Store::last_seq`), so a restart, a
//!   partition or a lost connection resumes exactly where applying stopped;
//! - a blob is stored before the op naming it is applied; if the peer did
//!   not resend a blob we no longer have (it was deleted here meanwhile),
//!   the connection is dropped and the next one starts with fresh blobs;
//! - the peer must present the certificate appliance.toml names.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::pki::fingerprint;
use super::wire::{self, Frame, WireError};
use super::{seeding, Peer, Replication};
use crate::store::StoreError;

pub(super) type Tls = StreamOwned<ClientConnection, TcpStream>;

/// The peer sends a heartbeat every second; this much silence is a dead link.
pub(super) const SILENCE: Duration = Duration::from_secs(10);

pub fn run(rep: std::sync::Arc<Replication>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let Some(peer) = rep.peer() else {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        let result = pull(&rep, &peer, &mut backoff);
        if let Ok(mut s) = rep.status.lock() {
            s.connected = false;
            if let Err(e) = &result {
                s.last_error = Some(e.to_string());
            }
        }
        if let Err(e) = result {
            tracing::warn!(peer = %peer.name, error = %e, "replication link down; retrying");
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A mutual-TLS connection to the peer's link server.
pub fn connect(rep: &Replication, peer: &Peer) -> Result<Tls, WireError> {
    let addr = peer
        .addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| WireError::Bad(format!("{} does not resolve", peer.addr)))?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(SILENCE))?;
    tcp.set_write_timeout(Some(Duration::from_secs(30)))?;
    tcp.set_nodelay(true)?;
    let config = rep
        .files
        .client_config()
        .map_err(|e| WireError::Bad(e.to_string()))?;
    let name = ServerName::try_from(peer.name.clone())
        .map_err(|e| WireError::Bad(format!("peer name {}: {e}", peer.name)))?;
    let conn = ClientConnection::new(config, name)
        .map_err(|e| WireError::Bad(format!("TLS setup: {e}")))?;
    let mut tls = StreamOwned::new(conn, tcp);
    // Drive the handshake now so the peer's certificate can be checked.
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| WireError::Bad(format!("TLS handshake with {}: {e}", peer.addr)))?;
    }
    let presented = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| fingerprint(c.as_ref()))
        .unwrap_or_default();
    if !peer.fingerprint.is_empty() && presented != peer.fingerprint {
        return Err(WireError::Bad(format!(
            "{} presented certificate {presented}, not the peer's {}",
            peer.addr, peer.fingerprint
        )));
    }
    Ok(tls)
}

fn pull(rep: &Replication, peer: &Peer, backoff: &mut Duration) -> Result<(), WireError> {
    let mut tls = connect(rep, peer)?;
    wire::write(
        &mut tls,
        &Frame::Hello {
            node: rep.node.clone(),
        },
        None,
    )?;
    tls.flush()?;
    match wire::read(&mut tls)? {
        Frame::Welcome { node } if node == peer.name => {}
        Frame::Welcome { node } => {
            return Err(WireError::Bad(format!(
                "the peer says it is {node}, appliance.toml says {}",
                peer.name
            )))
        }
        Frame::Refused { reason } => return Err(WireError::Bad(format!("refused: {reason}"))),
        other => return Err(WireError::Bad(format!("expected Welcome, got {other:?}"))),
    }
    let store = &rep.store;
    let fail = |e: StoreError| WireError::Bad(e.to_string());
    let snapshot = seeding::wants_snapshot(rep);
    if snapshot {
        wire::write(&mut tls, &Frame::Snapshot, None)?;
    } else {
        // A snapshot cut short, and then seeding given up or the peer
        // without snapshots: start from an empty store and pull the log.
        if store.discard_partial_snapshot().map_err(fail)? {
            tracing::warn!(peer = %peer.name, "discarded a partly installed snapshot; pulling the peer's whole log instead");
        }
        let mut after = BTreeMap::new();
        let mut origins = store.origins().map_err(fail)?;
        origins.push(peer.name.clone());
        origins.push(rep.node.clone());
        for origin in origins {
            let seq = store.last_seq(&origin).map_err(fail)?;
            after.insert(origin, seq);
        }
        wire::write(&mut tls, &Frame::Pull { after }, None)?;
    }
    tls.flush()?;
    tracing::info!(peer = %peer.name, "replication link up");
    if let Ok(mut s) = rep.status.lock() {
        s.connected = true;
        s.last_error = None;
    }
    *backoff = Duration::from_millis(200);
    if snapshot {
        let outcome = seeding::receive(rep, &mut tls, peer);
        seeding::finished(rep, &outcome);
        if let seeding::Received::NotOffered(why) = outcome? {
            tracing::info!(peer = %peer.name, reason = %why,
                "the peer offers no snapshot (an older version?); pulling its whole log instead");
            return Err(WireError::Bad(format!("no snapshot from the peer: {why}")));
        }
    }
    loop {
        let frame = wire::read(&mut tls)?;
        let now = chrono::Utc::now().timestamp();
        match frame {
            Frame::Op { op, blob, deleted } => {
                if let Some(len) = blob {
                    let bytes = wire::read_payload(&mut tls, len)?;
                    store.put_blob(&bytes).map_err(fail)?;
                }
                let applied = if deleted {
                    store.apply_remote_deleted(&op)
                } else {
                    store.apply_remote(&op)
                };
                match applied {
                    Ok(true) if op.id.origin != rep.node => rep.notify(&op),
                    Ok(_) => {}
                    Err(StoreError::MissingBlob(b)) => {
                        return Err(WireError::Bad(format!(
                            "blob {b} was not resent; reconnecting to get it"
                        )))
                    }
                    Err(e) => return Err(fail(e)),
                }
                if let Ok(mut s) = rep.status.lock() {
                    s.applied += 1;
                    s.last_contact = Some(now);
                    if op.id.origin != rep.node {
                        let now_ms =
                            u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
                        s.record_lag(now_ms.saturating_sub(op.ts.ms));
                    }
                }
            }
            Frame::Heartbeat { heads } => {
                // Frames arrive in order: everything up to these heads
                // was sent before this heartbeat, so no lag means caught up.
                let caught_up = super::status::lag(rep, &heads).values().all(|&n| n == 0);
                if let Ok(mut s) = rep.status.lock() {
                    s.peer_heads = heads;
                    s.last_contact = Some(now);
                    s.caught_up_once |= caught_up;
                }
            }
            Frame::Refused { reason } => return Err(WireError::Bad(format!("refused: {reason}"))),
            other => return Err(WireError::Bad(format!("unexpected frame {other:?}"))),
        }
    }
}

/// The peer's state digest, over a short connection of its own.
pub fn ask_digest(rep: &Replication, peer: &Peer) -> Result<(String, u64), WireError> {
    let mut tls = connect(rep, peer)?;
    wire::write(&mut tls, &Frame::Digest, None)?;
    tls.flush()?;
    match wire::read(&mut tls)? {
        Frame::DigestIs { digest, messages } => Ok((digest, messages)),
        Frame::Refused { reason } => Err(WireError::Bad(format!("refused: {reason}"))),
        other => Err(WireError::Bad(format!("expected a digest, got {other:?}"))),
    }
}
