//! The holder's listener: takes the peer engine's shadow copies.
//!
//! One thread per connection (there is one peer). Mutual TLS with the
//! pair's certificates (`replication::pki`): a client must present a
//! certificate of the cluster CA and, once appliance.toml names the peer,
//! the peer's own. Every frame received counts as a sign of life
//! (`Liveness`), which is what keeps the takeover away.
//!
//! Reads untrusted input: yes, frames from whoever completes the TLS
//! handshake; they are only acted on after the certificate check, and
//! lengths are bounded by `replication::wire`.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ServerConnection, StreamOwned};

use super::frames::ShadowFrame;
use super::held::HeldCopies;
use super::{current_pair, Liveness};
use crate::config::Config;
use crate::replication::pki::fingerprint;
use crate::replication::wire::{self, WireError};

type Tls = StreamOwned<ServerConnection, TcpStream>;

/// Longer than the origin's ping interval, so a live origin never times out.
const SILENCE: Duration = Duration::from_secs(30);

pub struct HolderContext {
    pub config: Arc<Config>,
    pub node: String,
    pub held: Arc<HeldCopies>,
    pub liveness: Arc<Liveness>,
}

pub fn serve(ctx: Arc<HolderContext>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "shadow link accept failed");
                continue;
            }
        };
        let (ctx, tls) = (ctx.clone(), tls.clone());
        let spawned = std::thread::Builder::new()
            .name("shadow-conn".into())
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                if let Err(e) = handle(&ctx, stream, tls) {
                    tracing::info!(?peer, error = %e, "shadow link connection ended");
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a shadow link thread");
        }
    }
}

fn handle(
    ctx: &HolderContext,
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> Result<(), WireError> {
    stream.set_read_timeout(Some(SILENCE))?;
    stream.set_write_timeout(Some(SILENCE))?;
    stream.set_nodelay(true)?;
    let conn =
        ServerConnection::new(config).map_err(|e| WireError::Bad(format!("TLS setup: {e}")))?;
    let mut tls = StreamOwned::new(conn, stream);
    let first: ShadowFrame = wire::read(&mut tls)?;
    if let Err(reason) = authenticated(ctx, &tls) {
        refuse(&mut tls, &reason)?;
        return Err(WireError::Bad(reason));
    }
    let ShadowFrame::Hello { node, queued } = first else {
        refuse(&mut tls, "expected hello")?;
        return Err(WireError::Bad("first frame was not hello".into()));
    };
    // Under the takeover lock: the origin learns of every takeover or of
    // none that is still running.
    let deciding = ctx
        .liveness
        .takeover
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    ctx.liveness.heard();
    let dropped = ctx.held.keep_only(&queued).map_err(bad)?;
    let taken: Vec<String> = ctx
        .held
        .taken_ids()
        .map_err(bad)?
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    tracing::info!(peer = %node, held = ctx.held.ids().map(|i| i.len()).unwrap_or(0),
        finished_meanwhile = dropped, taken_over = taken.len(), "peer engine connected to the shadow link");
    wire::write(
        &mut tls,
        &ShadowFrame::Welcome {
            node: ctx.node.clone(),
            taken,
        },
        None,
    )?;
    tls.flush()?;
    drop(deciding);
    loop {
        let frame: ShadowFrame = wire::read(&mut tls)?;
        ctx.liveness.heard();
        match frame {
            ShadowFrame::Hold { id, len } => {
                let file = wire::read_payload(&mut tls, len)?;
                ctx.held.put(&id, &file).map_err(bad)?;
                wire::write(&mut tls, &ShadowFrame::Held { id }, None)?;
                tls.flush()?;
            }
            ShadowFrame::Progress { id, recipients } => {
                ctx.held.progress(&id, &recipients).map_err(bad)?
            }
            ShadowFrame::Done { ids } => {
                for id in ids {
                    ctx.held.forget(&id).map_err(bad)?;
                }
            }
            ShadowFrame::TakenSeen { ids } => ctx.held.release_taken(&ids).map_err(bad)?,
            ShadowFrame::Ping => {}
            other => return Err(WireError::Bad(format!("unexpected frame {other:?}"))),
        }
    }
}

fn bad(e: super::held::HeldError) -> WireError {
    WireError::Bad(e.to_string())
}

fn refuse(tls: &mut Tls, reason: &str) -> Result<(), WireError> {
    wire::write(
        tls,
        &ShadowFrame::Refused {
            reason: reason.to_string(),
        },
        None,
    )?;
    tls.flush()?;
    Ok(())
}

/// A certificate of the cluster CA (rustls checked the chain), and the
/// peer's own once appliance.toml names it.
fn authenticated(ctx: &HolderContext, tls: &Tls) -> Result<(), String> {
    let presented = tls
        .conn
        .peer_certificates()
        .and_then(|certs| certs.first().map(|c| fingerprint(c.as_ref())))
        .ok_or("a certificate from the pair's CA is required")?;
    let expected = current_pair(&ctx.config).peer_fingerprint;
    if !expected.is_empty() && expected != presented {
        return Err(format!(
            "certificate {presented} is not the peer's ({expected})"
        ));
    }
    Ok(())
}
