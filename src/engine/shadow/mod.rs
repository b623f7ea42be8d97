//! Shadow copies (R3): with a peer, each message this engine accepts is
//! also held by the peer's engine before `250` is sent, so losing a node
//! loses no accepted mail.
//!
//! Shape: each engine is both an origin and a holder.
//! - As origin (`client`), the door hands every accepted queue file to the
//!   link and waits up to `[pair] shadow_wait` for the peer's "held"; if
//!   the link is down or slow the message is accepted alone and the log
//!   says so. Recipients finished and messages leaving the queue are told
//!   to the peer as they happen (best effort: reconnection reconciles).
//! - As holder (`server`, `held`), the engine keeps the peer's copies in
//!   `spool/shadow/`. If the peer's engine has been silent for `[pair]
//!   shadow_takeover_after` (it pings every second while up), the holder
//!   takes every copy into its own queue (same id and bytes, minus the
//!   recipients the peer reported finished) and delivers it.
//! - When the silent engine comes back, its first exchange learns which of
//!   its messages the peer took; it drops them from its queue. Messages it
//!   recovered from its spool at start are not attempted until that
//!   exchange happened (or `GATE_LIMIT` passed with the peer unreachable),
//!   so a node back from a long outage does not deliver what the peer
//!   delivered for it.
//!
//! The link listens on `[pair] engine_listen` (default: the replication
//! link's address, next port) with the pair's certificates
//! (`replication::pki`); nothing else can speak it.
//!
//! Known limits: a partition longer than the takeover time (both engines
//! alive) makes both deliver the messages queued at the origin during it,
//! so the default is long (10 minutes); likewise a recipient the origin
//! delivered in the instant before it died, before its progress reached
//! the peer. Local mailboxes still end with one copy (`store::queue_refs`
//! merges them by queue id on both nodes); a remote server gets two.
//! `Hello` lists every queued id in one frame, so a queue of more than
//! about 150,000 messages exceeds the frame limit and the link stays down
//! (mail is then accepted alone) until the queue is smaller.
//!
//! Reads untrusted input: frames from the peer (see `server`).

pub mod client;
pub mod frames;
pub mod held;
pub mod server;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{Config, PairConfig};
use crate::engine::queue::{Envelope, Recipient, RecipientState, Spool};
use client::Request;
use held::HeldCopies;

/// Longest a restarted engine waits for the peer before attempting the
/// messages it recovered (the peer may be down for good).
pub const GATE_LIMIT: Duration = Duration::from_secs(30);

/// The pair as appliance.toml says now: `pair join` on the peer adds the
/// peer to a running node's file, so the engine reads it again.
pub fn current_pair(config: &Config) -> PairConfig {
    match Config::load(&config.source) {
        Ok(c) => c.pair,
        Err(_) => config.pair.clone(),
    }
}

/// How many of the peer's messages this node holds (None: it never held
/// any, i.e. it is not paired).
pub fn held_count(spool_root: &std::path::Path) -> Option<usize> {
    HeldCopies::existing(spool_root).and_then(|h| h.ids().ok().map(|ids| ids.len()))
}

/// Whether this node is paired (has pair certificates and a link address).
pub fn is_paired(config: &Config) -> bool {
    !config.pair.listen.is_empty()
        && crate::replication::pki::PairFiles::new(&config.node.data_dir).exists()
}

/// The door's and the attempts' handle on the link.
pub struct ShadowLink {
    requests: Option<Sender<Request>>,
    connected: Arc<AtomicBool>,
    wait: Duration,
}

/// What became of a message's shadow copy.
#[derive(Debug, PartialEq, Eq)]
pub enum Shadow {
    /// The peer holds it durably.
    Held,
    /// Accepted alone, for this reason.
    Alone(&'static str),
    /// This node has no peer.
    Unpaired,
}

impl ShadowLink {
    pub fn unpaired() -> ShadowLink {
        ShadowLink {
            requests: None,
            connected: Arc::new(AtomicBool::new(false)),
            wait: Duration::ZERO,
        }
    }

    fn paired(requests: Sender<Request>, connected: Arc<AtomicBool>, wait: Duration) -> Self {
        ShadowLink {
            requests: Some(requests),
            connected,
            wait,
        }
    }

    pub fn is_paired(&self) -> bool {
        self.requests.is_some()
    }

    pub fn is_connected(&self) -> bool {
        self.is_paired() && self.connected.load(Ordering::SeqCst)
    }

    /// Sends the queue file (`Spool::accept`'s bytes) of a just-accepted
    /// message and waits (up to `shadow_wait`) until the peer holds it.
    pub async fn hold(&self, id: &str, file: Vec<u8>) -> Shadow {
        let Some(requests) = &self.requests else {
            return Shadow::Unpaired;
        };
        if !self.connected.load(Ordering::SeqCst) {
            return Shadow::Alone("the link to the peer engine is down");
        }
        let (held, answer) = smol::channel::bounded(1);
        let request = Request::Hold {
            id: id.to_string(),
            file,
            held,
        };
        if requests.send(request).is_err() {
            return Shadow::Alone("the shadow link has stopped");
        }
        let waited = smol::future::or(async { answer.recv().await.ok() }, async {
            smol::Timer::after(self.wait).await;
            None
        })
        .await;
        match waited {
            Some(()) => Shadow::Held,
            None if answer.is_closed() => Shadow::Alone("the link to the peer engine failed"),
            None => Shadow::Alone("the peer engine did not answer within shadow_wait"),
        }
    }

    /// Tells the peer which recipients of `id` are final now.
    pub fn progress(&self, id: &str, changed: &[(usize, Recipient)]) {
        let recipients: Vec<(usize, Recipient)> = changed
            .iter()
            .filter(|(_, r)| r.state != RecipientState::Pending)
            .cloned()
            .collect();
        if !recipients.is_empty() {
            self.send(Request::Progress {
                id: id.to_string(),
                recipients,
            });
        }
    }

    /// Tells the peer `id` left our queue.
    pub fn done(&self, id: &str) {
        self.send(Request::Done(id.to_string()));
    }

    fn send(&self, request: Request) {
        if let (true, Some(requests)) = (self.is_connected(), &self.requests) {
            let _ = requests.send(request);
        }
    }
}

/// When the holder last heard from the peer's engine (or started).
pub struct Liveness {
    last: Mutex<Instant>,
    /// Held while deciding on and doing a takeover, and while answering a
    /// `Hello`, so a reconnecting origin sees every takeover or none.
    pub takeover: Mutex<()>,
}

impl Liveness {
    pub fn new() -> Liveness {
        Liveness {
            last: Mutex::new(Instant::now()),
            takeover: Mutex::new(()),
        }
    }

    pub fn heard(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn silent_for(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShadowError {
    #[error("cannot listen for the peer engine's shadow copies on {addr}: {source} (set [pair] engine_listen)")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("[pair] engine_listen is not \"ip:port\"")]
    NoAddress,
    #[error("shadow copies: {0}")]
    Held(#[from] held::HeldError),
    #[error("pair certificates: {0}")]
    Pki(#[from] crate::replication::pki::PkiError),
    #[error("cannot start a shadow link thread: {0}")]
    Thread(std::io::Error),
}

/// The holder's half, opened before the spool recovers (see `held`).
pub struct Holder {
    held: Arc<HeldCopies>,
    listener: TcpListener,
}

/// Opens the holder's store, finishes interrupted takeovers and binds its
/// listener. Call before `Spool::recover`.
pub fn open_holder(config: &Config, spool: &Spool) -> Result<Holder, ShadowError> {
    let held = Arc::new(HeldCopies::open(&config.spool_dir())?);
    held.recover(spool)?;
    let addr = config
        .pair
        .engine_listen_addr()
        .ok_or(ShadowError::NoAddress)?;
    let listener = TcpListener::bind(addr).map_err(|source| ShadowError::Bind { addr, source })?;
    Ok(Holder { held, listener })
}

/// What `start` needs from the engine.
pub struct Wiring {
    pub config: Arc<Config>,
    pub spool: Arc<Spool>,
    /// Where taken-over messages go (the scheduler's intake).
    pub announce: smol::channel::Sender<Envelope>,
    /// Drops the messages the peer took over from our queue (ids), then
    /// lets the recovered ones be attempted.
    pub on_taken: client::OnTaken,
}

/// The origin thread's end of the link, until `start` runs it.
pub struct OriginEnd {
    requests: std::sync::mpsc::Receiver<Request>,
    connected: Arc<AtomicBool>,
}

/// The link, made before the door so the door can hold.
pub fn link(config: &Config) -> (Arc<ShadowLink>, OriginEnd) {
    let (tx, requests) = std::sync::mpsc::channel();
    let connected = Arc::new(AtomicBool::new(false));
    let link = ShadowLink::paired(tx, connected.clone(), config.pair.shadow_wait.0);
    (
        Arc::new(link),
        OriginEnd {
            requests,
            connected,
        },
    )
}

/// Starts the holder's listener, its takeover watch, and the origin's link.
pub fn start(holder: Holder, origin: OriginEnd, wiring: Wiring) -> Result<(), ShadowError> {
    let OriginEnd {
        requests,
        connected,
    } = origin;
    let tls =
        crate::replication::pki::PairFiles::new(&wiring.config.node.data_dir).server_config()?;
    let liveness = Arc::new(Liveness::new());
    let ctx = Arc::new(server::HolderContext {
        config: wiring.config.clone(),
        node: wiring.config.node.name.clone(),
        held: holder.held.clone(),
        liveness: liveness.clone(),
    });
    tracing::info!(addr = ?holder.listener.local_addr().ok(), "shadow link listening for the peer engine");
    let listener = holder.listener;
    spawn("shadow-listen", move || server::serve(ctx, listener, tls))?;
    let (held, spool, announce) = (holder.held, wiring.spool.clone(), wiring.announce);
    let after = wiring.config.pair.shadow_takeover_after.0;
    spawn("shadow-takeover", move || {
        watch(&held, &spool, &liveness, after, &announce)
    })?;
    let origin = client::OriginContext {
        config: wiring.config,
        spool: wiring.spool,
        connected,
        on_taken: wiring.on_taken,
    };
    spawn("shadow-origin", move || client::run(origin, requests))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), ShadowError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(ShadowError::Thread)
}

/// Once a second: if we hold copies and the peer's engine has been silent
/// for `after`, deliver them ourselves.
fn watch(
    held: &HeldCopies,
    spool: &Spool,
    liveness: &Liveness,
    after: Duration,
    announce: &smol::channel::Sender<Envelope>,
) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let _deciding = liveness.takeover.lock().unwrap_or_else(|p| p.into_inner());
        let silent = liveness.silent_for();
        if silent < after {
            continue;
        }
        let ids = match held.ids() {
            Ok(ids) if ids.is_empty() => continue,
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the peer's shadow copies");
                continue;
            }
        };
        tracing::warn!(
            silent_secs = silent.as_secs(),
            messages = ids.len(),
            "the peer engine is silent; delivering the shadow copies it left here"
        );
        for id in ids {
            match held.take_over(&id, spool) {
                Ok(Some(envelope)) => {
                    tracing::info!(queue_id = %id, "took over the peer's message");
                    if announce.try_send(envelope).is_err() {
                        tracing::warn!(queue_id = %id, "queue scheduler not listening; the message waits for a restart");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(queue_id = %id, error = %e, "cannot take over a shadow copy")
                }
            }
        }
    }
}
