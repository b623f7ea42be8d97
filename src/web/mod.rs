//! The web stack of the mailbox role: HTTPS webmail, and plain HTTP that only
//! redirects to HTTPS (R8, R16). The console and the portal API will share
//! this stack but not its pages.
//!
//! How a request travels:
//! `tls_front` (public port, rustls) -> internal tiny-http on 127.0.0.1:0 ->
//! `server` workers -> `webmail::Webmail::handle` -> askama page -> back.
//! Paths `/admin` and below are handed on to `console::Console::handle`,
//! `/metrics` to `metrics::handle` (Prometheus, its own access rule).
//!
//! Owns: the listening sockets named in `[mailbox] https_listen` and
//! `http_listen`, the threads serving them, and the in-memory session table.
//!
//! Invariants:
//! - Nothing is served in plain text except the 301 to `public_url`.
//! - `start` returns only once both public ports are bound; a bind error
//!   names the address and the config key.
//! - The web knows the store, mime and directory only through their public
//!   functions; it never touches their files.
//!
//! Reads untrusted input: yes, everything from browsers (see each file).

pub mod assets;
pub mod console;
pub mod csrf;
pub mod form;
pub mod format;
pub mod http;
pub mod i18n;
pub mod metrics;
pub mod multipart;
mod server;
pub mod session;
pub mod tls_front;
pub mod webmail;

#[cfg(test)]
mod e2e_tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tls_front::{ClientMap, Front};

/// Threads answering webmail requests (handlers may wait on argon2 or disk).
const WEBMAIL_WORKERS: usize = 8;
/// Threads answering the redirect port.
const REDIRECT_WORKERS: usize = 2;
/// Threads running the TLS front (handshakes and copying).
const FRONT_THREADS: usize = 2;

/// What the web needs from the rest of the mailbox role.
pub struct WebContext {
    pub config: Arc<crate::config::Config>,
    pub store: Arc<crate::store::Store>,
    pub directory: Arc<crate::directory::Directory>,
    pub tls: Arc<rustls::ServerConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {addr} (`[mailbox] {key}` in appliance.toml): {source}; choose a free address or stop the program using it")]
    Bind {
        addr: SocketAddr,
        key: &'static str,
        source: std::io::Error,
    },
    #[error("cannot start the internal web server: {0}")]
    Internal(String),
    #[error("cannot start a web thread: {0}")]
    Thread(std::io::Error),
}

/// The running web stack.
pub struct WebHandle {
    threads: Vec<JoinHandle<()>>,
    https_addr: SocketAddr,
    http_addr: SocketAddr,
    internal_addr: SocketAddr,
    webmail: Arc<webmail::Webmail>,
}

impl WebHandle {
    /// Blocks for the life of the web stack (its threads do not end).
    pub fn wait(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }

    /// Where HTTPS is listening (useful when the config asked for port 0).
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// Where the plain-HTTP redirect is listening.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The loopback address of the internal tiny-http server (for tests
    /// that check it refuses connections not made by the TLS front).
    pub fn internal_addr(&self) -> SocketAddr {
        self.internal_addr
    }

    /// The webmail state, for metrics (live sessions) and, later, for
    /// applying replicated logins (`sessions.end_sessions_of`).
    pub fn webmail(&self) -> &Arc<webmail::Webmail> {
        &self.webmail
    }
}

fn bind(addr: SocketAddr, key: &'static str) -> Result<std::net::TcpListener, WebError> {
    std::net::TcpListener::bind(addr).map_err(|source| WebError::Bind { addr, key, source })
}

/// Binds `https_listen` (TLS) and `http_listen` (redirect to `public_url`),
/// starts the worker threads, and returns once bound.
pub fn start(ctx: WebContext) -> Result<WebHandle, WebError> {
    let https = bind(ctx.config.mailbox.https_listen, "https_listen")?;
    let http = bind(ctx.config.mailbox.http_listen, "http_listen")?;
    let https_addr = local_addr(&https, "https_listen", ctx.config.mailbox.https_listen)?;
    let http_addr = local_addr(&http, "http_listen", ctx.config.mailbox.http_listen)?;

    let (app_server, app_addr) = server::bind_internal()?;
    let (redirect_server, redirect_addr) = server::bind_internal()?;
    let clients = Arc::new(ClientMap::default());
    let monitor = Arc::new(crate::ops::node_report::Monitor::new(
        Arc::clone(&ctx.config),
        Arc::clone(&ctx.store),
    ));
    let webmail = Arc::new(webmail::Webmail::new(
        Arc::clone(&ctx.config),
        ctx.store,
        ctx.directory,
        Arc::clone(&monitor),
    ));
    let (open, sessions) = (Arc::clone(&clients), Arc::clone(&webmail.sessions));
    monitor.set_web_gauges(crate::ops::node_report::WebGauges {
        connections: Box::new(move || open.len() as u64),
        sessions: Box::new(move || sessions.live_count() as u64),
    });
    // The dashboard's charts: a sample of this node every `sample_every`.
    crate::ops::sampler::start(Arc::clone(&monitor)).map_err(WebError::Thread)?;
    // O3: the audit log's daily files are kept `[logs] keep_days`.
    crate::ops::retention::start(
        ctx.config.node.data_dir.join("audit"),
        "audit",
        ctx.config.logs.keep_days,
    )
    .map_err(WebError::Thread)?;

    let mut threads = server::spawn_webmail_workers(
        app_server,
        Arc::clone(&webmail),
        Arc::clone(&clients),
        WEBMAIL_WORKERS,
    )?;
    threads.extend(server::spawn_redirect_workers(
        redirect_server,
        ctx.config.mailbox.public_url.clone(),
        REDIRECT_WORKERS,
    )?);
    let fronts = vec![
        Front {
            listener: https,
            tls: Some(ctx.tls),
            upstream: app_addr,
            clients,
        },
        Front {
            listener: http,
            tls: None,
            upstream: redirect_addr,
            clients: Arc::new(ClientMap::default()),
        },
    ];
    threads.extend(tls_front::spawn(fronts, FRONT_THREADS).map_err(WebError::Thread)?);
    tracing::info!(https = %https_addr, http = %http_addr, "webmail listening");
    Ok(WebHandle {
        threads,
        https_addr,
        http_addr,
        internal_addr: app_addr,
        webmail,
    })
}

fn local_addr(
    listener: &std::net::TcpListener,
    key: &'static str,
    addr: SocketAddr,
) -> Result<SocketAddr, WebError> {
    listener
        .local_addr()
        .map_err(|source| WebError::Bind { addr, key, source })
}
