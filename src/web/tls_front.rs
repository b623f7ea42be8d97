//! The front door of the web: our own TLS (and plain-HTTP) acceptor in
//! front of tiny-http.
//!
//! Why: tiny-http's TLS feature pins an old rustls; the appliance keeps one
//! current rustls for SMTP and HTTPS (DESIGN.md, "known tensions"). So this
//! module accepts on the public port, does the rustls handshake
//! (futures-rustls on a small smol executor, the same rustls 0.23), and
//! pipes the plaintext to a tiny-http server bound on 127.0.0.1:0.
//!
//! Owns: the public listening sockets, one proxy connection per client, the
//! connection limits, and the `ClientMap` (proxy socket -> real client).
//!
//! Invariants:
//! - The client's real address survives: before the first byte reaches
//!   tiny-http, the proxy's outbound local address is recorded in
//!   `ClientMap`; the request handler looks the request's `remote_addr()` up
//!   there. A connection to the internal port that is not in the map did not
//!   come through here and is refused (403), so nobody on the box can skip
//!   TLS by talking to the internal port. The key is the full socket address
//!   (IP and port), so another loopback IP with the same port cannot match.
//! - A slow or broken client holds only its own connection: handshakes and
//!   idle reads/writes time out, and connections are capped in total and
//!   per client IP, so one client cannot exhaust tiny-http's threads.
//! - Only HTTP/1.1 is offered by ALPN (tiny-http speaks nothing else).
//!
//! Reads untrusted input: TLS records from anyone on the network (parsed by
//! rustls); the HTTP inside is only copied, parsed by tiny-http.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_rustls::TlsAcceptor;
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::{Executor, Timer};

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may stay silent in one direction.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Most connections open at once, and from one client IP (campus NAT puts
/// many people behind one address, hence the generous per-IP figure).
pub const MAX_CONNECTIONS: usize = 1024;
pub const MAX_PER_IP: usize = 256;

/// Proxy socket address (as tiny-http sees the peer) -> real client address.
#[derive(Debug, Default)]
pub struct ClientMap {
    inner: Mutex<HashMap<SocketAddr, (u64, SocketAddr)>>,
}

impl ClientMap {
    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, (u64, SocketAddr)>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The real client behind an internal connection from `internal_peer`,
    /// or `None` when that connection did not come through the front.
    pub fn client_of(&self, internal_peer: &SocketAddr) -> Option<SocketAddr> {
        self.lock().get(internal_peer).map(|(_, client)| *client)
    }

    fn insert(&self, proxy: SocketAddr, conn: u64, client: SocketAddr) {
        self.lock().insert(proxy, (conn, client));
    }

    /// Removes the entry only if it is still this connection's (the OS may
    /// already have reused the port for a newer one).
    fn remove(&self, proxy: &SocketAddr, conn: u64) {
        let mut map = self.lock();
        if map.get(proxy).is_some_and(|(c, _)| *c == conn) {
            map.remove(proxy);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counts open connections, in total and per IP.
#[derive(Debug, Default)]
struct Limits {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Limits {
    fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let per_ip = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= MAX_CONNECTIONS || per_ip >= MAX_PER_IP {
            return None;
        }
        open.0 += 1;
        open.1.insert(ip, per_ip + 1);
        Some(Permit {
            limits: Arc::clone(self),
            ip,
        })
    }
}

/// One open connection; gives its place back when dropped.
struct Permit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// One public listener and where its connections go.
pub struct Front {
    pub listener: std::net::TcpListener,
    /// `Some` for HTTPS; `None` pipes plain HTTP (the redirect port).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The internal tiny-http server.
    pub upstream: SocketAddr,
    /// Filled in for every proxied connection.
    pub clients: Arc<ClientMap>,
}

/// Starts the executor threads serving `fronts`; they run for the life of
/// the process. Returns the threads to join.
pub fn spawn(fronts: Vec<Front>, threads: usize) -> io::Result<Vec<std::thread::JoinHandle<()>>> {
    let executor: Arc<Executor<'static>> = Arc::new(Executor::new());
    let limits = Arc::new(Limits::default());
    for front in fronts {
        front.listener.set_nonblocking(true)?;
        let listener = TcpListener::try_from(front.listener)?;
        let acceptor = front.tls.map(|tls| {
            let mut config = (*tls).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            TlsAcceptor::from(Arc::new(config))
        });
        let ex = Arc::clone(&executor);
        let limits = Arc::clone(&limits);
        executor
            .spawn(accept_loop(
                ex,
                listener,
                acceptor,
                front.upstream,
                front.clients,
                limits,
            ))
            .detach();
    }
    let mut handles = Vec::new();
    for i in 0..threads.max(1) {
        let ex = Arc::clone(&executor);
        let handle = std::thread::Builder::new()
            .name(format!("web-front-{i}"))
            .spawn(move || smol::block_on(ex.run(smol::future::pending::<()>())))?;
        handles.push(handle);
    }
    Ok(handles)
}

async fn accept_loop(
    ex: Arc<Executor<'static>>,
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    upstream: SocketAddr,
    clients: Arc<ClientMap>,
    limits: Arc<Limits>,
) {
    static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(%err, "web accept failed");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(permit) = limits.try_take(peer.ip()) else {
            tracing::warn!(client = %peer, "web connection refused: too many connections");
            continue; // dropping `stream` closes it
        };
        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        let acceptor = acceptor.clone();
        let clients = Arc::clone(&clients);
        ex.spawn(async move {
            let _permit = permit;
            if let Err(err) = serve(stream, peer, acceptor, upstream, clients, conn).await {
                tracing::debug!(client = %peer, %err, "web connection ended");
            }
        })
        .detach();
    }
}

/// Removes a connection's `ClientMap` entry when the connection ends.
struct MapEntry {
    clients: Arc<ClientMap>,
    proxy: SocketAddr,
    conn: u64,
}

impl Drop for MapEntry {
    fn drop(&mut self) {
        self.clients.remove(&self.proxy, self.conn);
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    upstream: SocketAddr,
    clients: Arc<ClientMap>,
    conn: u64,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    match acceptor {
        Some(acceptor) => {
            // Handshake first, so a client that never finishes one costs no
            // tiny-http connection.
            let tls = within(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await?;
            let (inner, _entry) = connect_upstream(upstream, clients, conn, peer).await?;
            let (read, write) = smol::io::split(tls);
            pipe(read, write, inner).await
        }
        None => {
            let (inner, _entry) = connect_upstream(upstream, clients, conn, peer).await?;
            pipe(stream.clone(), stream, inner).await
        }
    }
}

/// Connects to tiny-http and records the connection in `ClientMap` before
/// any byte is sent (see the invariants); the entry goes when dropped.
async fn connect_upstream(
    upstream: SocketAddr,
    clients: Arc<ClientMap>,
    conn: u64,
    peer: SocketAddr,
) -> io::Result<(TcpStream, MapEntry)> {
    let inner = TcpStream::connect(upstream).await?;
    inner.set_nodelay(true)?;
    let entry = MapEntry {
        proxy: inner.local_addr()?,
        clients,
        conn,
    };
    entry.clients.insert(entry.proxy, conn, peer);
    Ok((inner, entry))
}

/// Copies client -> tiny-http and back until tiny-http closes, a side fails,
/// or a direction stays idle too long. When the client stops sending, the
/// internal socket is half-closed so tiny-http finishes and closes.
async fn pipe<R, W>(client_read: R, mut client_write: W, inner: TcpStream) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut inner_write = inner.clone();
    let inbound = async {
        let result = copy(client_read, &mut inner_write).await;
        let _ = inner_write.shutdown(Shutdown::Write);
        if let Err(err) = result {
            tracing::debug!(%err, "client side of a web connection ended");
        }
        smol::future::pending::<io::Result<()>>().await
    };
    let outbound = async {
        copy_from_inner(inner, &mut client_write).await?;
        client_write.close().await
    };
    outbound.or(inbound).await
}

async fn copy<R, W>(mut from: R, to: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = within(IDLE_TIMEOUT, from.read(&mut buf)).await?;
        if n == 0 {
            return Ok(());
        }
        within(IDLE_TIMEOUT, to.write_all(&buf[..n])).await?;
        within(IDLE_TIMEOUT, to.flush()).await?;
    }
}

/// `copy` from tiny-http's side, acknowledging every segment at once.
///
/// tiny-http writes a reply's head and body separately and its socket keeps
/// Nagle's algorithm on, so the body waits for the head's ACK; Linux delays
/// that ACK up to 40 ms. TCP_QUICKACK (which the kernel clears again after
/// a while, hence before every read) makes our side acknowledge at once,
/// saving those 40 ms on every page.
async fn copy_from_inner<W>(from: TcpStream, to: &mut W) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut from = from;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let _ = rustix::net::sockopt::set_tcp_quickack(&from, true);
        let n = within(IDLE_TIMEOUT, from.read(&mut buf)).await?;
        if n == 0 {
            return Ok(());
        }
        within(IDLE_TIMEOUT, to.write_all(&buf[..n])).await?;
        within(IDLE_TIMEOUT, to.flush()).await?;
    }
}

/// `work`, or a `TimedOut` error after `limit`.
async fn within<T>(limit: Duration, work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    work.or(async {
        Timer::after(limit).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_map_removes_only_its_own_entry() {
        let map = ClientMap::default();
        let proxy: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let first: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let second: SocketAddr = "192.0.2.2:6000".parse().unwrap();
        map.insert(proxy, 1, first);
        assert_eq!(map.client_of(&proxy), Some(first));
        // The port was reused by a newer connection before the old one ended.
        map.insert(proxy, 2, second);
        map.remove(&proxy, 1);
        assert_eq!(map.client_of(&proxy), Some(second));
        map.remove(&proxy, 2);
        assert!(map.is_empty());
        // Same port, other loopback IP: not ours.
        map.insert(proxy, 3, first);
        assert_eq!(map.client_of(&"127.0.0.2:40000".parse().unwrap()), None);
    }

    #[test]
    fn limits_cap_per_ip_and_give_back() {
        let limits = Arc::new(Limits::default());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let permits: Vec<Permit> = (0..MAX_PER_IP)
            .filter_map(|_| limits.try_take(ip))
            .collect();
        assert_eq!(permits.len(), MAX_PER_IP);
        assert!(limits.try_take(ip).is_none());
        assert!(limits.try_take("192.0.2.10".parse().unwrap()).is_some());
        drop(permits);
        assert!(limits.try_take(ip).is_some());
    }
}
