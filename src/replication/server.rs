//! The link server: streams this node's op log (every origin it holds) to
//! the peer, answers digest requests, and admits a joining node.
//!
//! One thread per connection (there is one peer). After `Pull`, the server
//! only writes: ops past the positions the peer sent, each `Deliver` with
//! its blob the first time this connection names it, then a heartbeat with
//! the log heads at least once a second (also under load). New local ops
//! are found by looking at the log every 50 ms, so a change reaches a
//! connected peer well within a second. This node's own ops are shipped
//! only once they are on disk here (`Store::durable_own_seq`): an op the
//! peer had but we lost in a crash would see its number reused.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::pki::fingerprint;
use super::wire::{self, Frame, WireError};
use super::Replication;
use crate::store::{BlobId, Op};

const POLL: Duration = Duration::from_millis(50);
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Ops read from the log per round.
const BATCH: usize = 256;

type Tls = StreamOwned<ServerConnection, TcpStream>;

pub fn serve(rep: Arc<Replication>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "replication accept failed");
                continue;
            }
        };
        let (rep, tls) = (rep.clone(), tls.clone());
        let spawned = std::thread::Builder::new()
            .name("pair-conn".into())
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                if let Err(e) = handle(&rep, stream, tls) {
                    tracing::info!(?peer, error = %e, "replication connection ended");
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a replication connection thread");
        }
    }
}

fn handle(
    rep: &Replication,
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> Result<(), WireError> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let conn =
        ServerConnection::new(config).map_err(|e| WireError::Bad(format!("TLS setup: {e}")))?;
    let mut tls = StreamOwned::new(conn, stream);
    let first = wire::read(&mut tls)?;
    if let Frame::Join {
        secret,
        node,
        listen,
    } = first
    {
        return super::join::answer(rep, &mut tls, &secret, &node, &listen);
    }
    if let Err(reason) = authenticated(rep, &tls) {
        refuse(&mut tls, &reason)?;
        return Err(WireError::Bad(reason));
    }
    match first {
        Frame::Hello { node } => {
            tracing::info!(peer = %node, "peer connected to pull our log");
            wire::write(
                &mut tls,
                &Frame::Welcome {
                    node: rep.node.clone(),
                },
                None,
            )?;
            tls.flush()?;
            match wire::read(&mut tls)? {
                Frame::Pull { after } => stream_log(rep, &mut tls, after),
                Frame::Snapshot => {
                    let after = super::seeding::send(rep, &mut tls, &node)?;
                    stream_log(rep, &mut tls, after)
                }
                other => Err(WireError::Bad(format!("expected Pull, got {other:?}"))),
            }
        }
        Frame::Digest => {
            let (digest, messages) = rep
                .store
                .digest()
                .map_err(|e| WireError::Bad(e.to_string()))?;
            wire::write(&mut tls, &Frame::DigestIs { digest, messages }, None)?;
            tls.flush()?;
            Ok(())
        }
        other => {
            refuse(&mut tls, "unexpected first frame")?;
            Err(WireError::Bad(format!("unexpected first frame {other:?}")))
        }
    }
}

fn refuse(tls: &mut Tls, reason: &str) -> Result<(), WireError> {
    wire::write(
        tls,
        &Frame::Refused {
            reason: reason.to_string(),
        },
        None,
    )?;
    tls.flush()?;
    Ok(())
}

/// The client presented a certificate of the cluster CA (rustls checked
/// the chain), and it is the peer's own once we know the peer.
fn authenticated(rep: &Replication, tls: &Tls) -> Result<(), String> {
    let certs = tls
        .conn
        .peer_certificates()
        .ok_or("a certificate from the pair's CA is required")?;
    let presented = certs
        .first()
        .map(|c| fingerprint(c.as_ref()))
        .ok_or("a certificate from the pair's CA is required")?;
    match rep.peer() {
        Some(peer) if !peer.fingerprint.is_empty() && peer.fingerprint != presented => {
            Err(format!(
                "certificate {presented} is not the peer's ({})",
                peer.fingerprint
            ))
        }
        _ => Ok(()),
    }
}

fn stream_log(
    rep: &Replication,
    tls: &mut Tls,
    mut positions: BTreeMap<String, u64>,
) -> Result<(), WireError> {
    let store = &rep.store;
    let fail = |e: crate::store::StoreError| WireError::Bad(e.to_string());
    let mut sent_blobs: HashSet<BlobId> = HashSet::new();
    // When the last heartbeat went (None: none yet, so the first round
    // sends one).
    let mut last_write: Option<Instant> = None;
    loop {
        let mut sent = 0;
        let durable = store.durable_own_seq().map_err(fail)?;
        for origin in store.origins().map_err(fail)? {
            let after = positions.get(&origin).copied().unwrap_or(0);
            let own = origin == store.node();
            for op in store.ops_since(&origin, after, BATCH).map_err(fail)? {
                if own && op.id.seq > durable {
                    // Not flushed yet: next round.
                    break;
                }
                let mut deleted = false;
                let bytes = match &op.op {
                    Op::Deliver { blob, .. } if sent_blobs.insert(*blob) => {
                        let bytes = store.blob(blob).map_err(fail)?;
                        if bytes.is_none() {
                            // Every message of the delivery was deleted
                            // here before the peer got it: the bytes are
                            // gone; the peer records tombstones.
                            sent_blobs.remove(blob);
                            for message in op.delivered_ids() {
                                if !store.is_deleted(&message).map_err(fail)? {
                                    return Err(WireError::Bad(format!(
                                        "blob {blob} of live message {message} is missing here; run `campusmail store fsck`"
                                    )));
                                }
                            }
                            deleted = true;
                        }
                        bytes
                    }
                    _ => None,
                };
                let frame = Frame::Op {
                    blob: bytes.as_ref().map(|b| b.len() as u64),
                    op: op.clone(),
                    deleted,
                };
                wire::write(tls, &frame, bytes.as_deref())?;
                positions.insert(origin.clone(), op.id.seq);
                sent += 1;
            }
        }
        if sent > 0 {
            tls.flush()?;
        }
        // At least once a second even under steady load, so the peer
        // always knows how far behind it is.
        if last_write.is_none_or(|t| t.elapsed() >= HEARTBEAT) {
            let mut heads = BTreeMap::new();
            for origin in store.origins().map_err(fail)? {
                heads.insert(origin.clone(), store.last_seq(&origin).map_err(fail)?);
            }
            wire::write(tls, &Frame::Heartbeat { heads }, None)?;
            tls.flush()?;
            last_write = Some(Instant::now());
        }
        if sent > 0 {
            continue;
        }
        std::thread::sleep(POLL);
    }
}
