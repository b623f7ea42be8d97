//! The SMTP listeners: accept connections and run one session task each.
//!
//! Owns: the bound listening sockets of the three SMTP ports.
//!
//! Invariants:
//! - Binding happens before `engine::start` returns, so a taken port is an
//!   error at start naming the address, not a silent dead listener.
//! - On the implicit-TLS port the TLS handshake completes before any SMTP
//!   byte is sent (RFC 8314 §3.3), bounded by the idle timeout.
//! - An error on one connection never stops the listener.
//!
//! Reads untrusted input: only through the sessions it starts.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smol::net::{TcpListener, TcpStream};
use smol::Executor;

use super::connection::{accept_tls, Connection, PeerStream};
use super::session::Session;
use super::{Port, SmtpContext};

/// Binds `addr`; the error names the address.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    TcpListener::try_from(listener)
}

/// Accepts connections forever, each served by its own task on `executor`.
pub(crate) async fn serve(
    ctx: Arc<SmtpContext>,
    listener: TcpListener,
    port: Port,
    executor: Arc<Executor<'static>>,
) {
    accept_forever(listener, port.name(), executor, move |tcp, peer| {
        handle(ctx.clone(), tcp, peer, port)
    })
    .await
}

/// Accepts connections on `listener` forever and runs `serve_one` for each
/// as its own task (shared with the LMTP server).
pub(crate) async fn accept_forever<F, Fut>(
    listener: TcpListener,
    what: &'static str,
    executor: Arc<Executor<'static>>,
    serve_one: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => executor.spawn(serve_one(tcp, peer)).detach(),
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(listener = what, error = %e, "cannot accept a connection");
                smol::Timer::after(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn handle(ctx: Arc<SmtpContext>, tcp: TcpStream, peer: SocketAddr, port: Port) {
    // Counted open until this function returns, however the session ends.
    let _open = crate::ops::counters::SmtpConnectionGuard::open();
    let idle = Duration::from_secs(ctx.config.engine.idle_timeout_secs);
    let stream = if port == Port::Submissions {
        match accept_tls(&ctx.tls, tcp, idle).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                return;
            }
        }
    } else {
        PeerStream::Plain(tcp)
    };
    let conn = Connection::new(stream, idle);
    let tls = conn.is_tls();
    tracing::debug!(peer = %peer, port = port.name(), "SMTP connection");
    Session::new(ctx, port, peer, tls).run(conn).await;
}
