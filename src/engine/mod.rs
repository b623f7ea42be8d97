//! The engine role: receives mail by SMTP, keeps it in the spool, and
//! delivers it (local mail over LMTP to the mailbox role).
//!
//! Owns: the SMTP listeners (`smtp`), the spool and queue (`queue`), the
//! delivery clients (`delivery`), and the threads that run them.
//!
//! Invariants:
//! - `start` returns only once every listener is bound and the spool is
//!   recovered; a bind error names the address.
//! - Mail accepted before a crash is delivered after the restart: the worker
//!   starts from everything `Spool::recover` found.
//! - The engine reads the directory only through the snapshot; it keeps
//!   accepting mail while the mailbox role is down (mail waits in the queue).
//!
//! Reads untrusted input: yes, through `smtp` (see there).

pub mod delivery;
pub mod queue;
pub mod shadow;
pub mod signing;
pub mod smtp;
pub(crate) mod stream;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use smol::Executor;

use crate::config::Config;
use crate::directory::snapshot::SnapshotWatcher;
use delivery::dns::{DnsError, DnsResolver};
use delivery::remote::RemoteDelivery;
use queue::attempt::Attempter;
use queue::commands::{execute, QueueCommand};
use queue::{QueueDoor, Scheduler, Spool, SpoolError};
use smtp::{Port, SmtpContext};

/// Threads running the engine's executor (the machine may have few cores).
const MAX_THREADS: usize = 4;

pub struct EngineContext {
    pub config: Arc<Config>,
    pub directory: Arc<SnapshotWatcher>,
    pub tls: Arc<rustls::ServerConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot listen for SMTP ({port}) on {addr}: {source} (is another mail server running? change [engine] in appliance.toml)")]
    Bind {
        port: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the spool: {0}")]
    Spool(#[from] SpoolError),
    #[error("cannot start an engine thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot set up DNS for delivery: {0} (check [routing] nameservers in appliance.toml)")]
    Dns(#[from] DnsError),
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    #[error(transparent)]
    Shadow(#[from] shadow::ShadowError),
}

/// Keeps the engine running; `wait` blocks while it runs.
pub struct EngineHandle {
    threads: Vec<JoinHandle<()>>,
    scheduler: Arc<Scheduler>,
    smtp_addr: SocketAddr,
    submission_addr: SocketAddr,
    submissions_addr: SocketAddr,
}

impl EngineHandle {
    /// Blocks until the engine threads end (normally never).
    pub fn wait(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }

    /// The bound MX address (useful when the configuration said port 0).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }

    pub fn submission_addr(&self) -> SocketAddr {
        self.submission_addr
    }

    pub fn submissions_addr(&self) -> SocketAddr {
        self.submissions_addr
    }

    /// The queue scheduler (for admin commands and tests).
    pub fn scheduler(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }
}

/// Binds the SMTP listeners, recovers the spool and starts delivery.
pub fn start(ctx: EngineContext) -> Result<EngineHandle, EngineError> {
    let engine = &ctx.config.engine;
    let spool = Arc::new(Spool::open(&ctx.config.spool_dir())?);
    // Before the spool's recovery: it finishes takeovers a crash interrupted.
    let holder = if shadow::is_paired(&ctx.config) {
        Some(shadow::open_holder(&ctx.config, &spool)?)
    } else {
        None
    };
    let recovered = spool.recover()?;
    if !recovered.is_empty() {
        tracing::info!(
            messages = recovered.len(),
            "recovered queued mail from the spool"
        );
    }
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for (port, addr) in [
        (Port::Mx, engine.smtp_listen),
        (Port::Submission, engine.submission_listen),
        (Port::Submissions, engine.submissions_listen),
    ] {
        let bind_error = |source| EngineError::Bind {
            port: port.name(),
            addr,
            source,
        };
        let listener = smtp::server::bind(addr).map_err(bind_error)?;
        bound.push(listener.local_addr().map_err(bind_error)?);
        listeners.push((port, listener));
    }

    let (announce, announced) = smol::channel::unbounded();
    let (link, origin) = match holder {
        Some(_) => {
            let (link, origin) = shadow::link(&ctx.config);
            (link, Some(origin))
        }
        None => (Arc::new(shadow::ShadowLink::unpaired()), None),
    };
    let door = Arc::new(QueueDoor::new(
        ctx.config.clone(),
        spool.clone(),
        announce.clone(),
        ctx.directory.clone(),
        link,
    ));
    let resolver = DnsResolver::new(&ctx.config.routing.nameservers)?;
    let authenticator = match crate::auth::Authenticator::new(&resolver, &ctx.config.node.hostname)
    {
        Ok(a) => Some(Arc::new(a)),
        Err(e) => {
            tracing::error!(error = %e, "SPF/DKIM/DMARC checks are off: they could not be set up");
            None
        }
    };
    let service = match crate::auth::service::ensure(&ctx.config.submission_secret()) {
        Ok(secret) => Some(secret),
        Err(e) => {
            tracing::error!(error = %e, "webmail cannot send mail: the submission service secret is unusable");
            None
        }
    };
    let smtp_ctx = Arc::new(SmtpContext {
        config: ctx.config.clone(),
        directory: ctx.directory.clone(),
        tls: futures_rustls::TlsAcceptor::from(ctx.tls.clone()),
        door: door.clone(),
        authenticator,
        signing: Arc::new(signing::SigningKeys::new(ctx.config.dkim_dir())),
        service,
    });
    let remote = Arc::new(RemoteDelivery::new(ctx.config.clone(), resolver));
    let attempter = Arc::new(Attempter::new(
        ctx.config.clone(),
        ctx.directory.clone(),
        spool.clone(),
        door,
        remote,
    ));
    let had_recovered = !recovered.is_empty();
    let scheduler = Scheduler::new(ctx.config.clone(), attempter, recovered);
    if let (Some(holder), Some(origin)) = (holder, origin) {
        let wiring = (spool, announce);
        start_shadow_link(
            &ctx.config,
            &scheduler,
            holder,
            origin,
            wiring,
            had_recovered,
        )?;
    }
    let executor = Arc::new(Executor::new());
    scheduler.spawn(&executor, announced);
    let commands = scheduler.clone();
    crate::control::serve::<QueueCommand>(
        &ctx.config.engine_socket(),
        Arc::new(move |c| execute(commands.as_ref(), &c).map_err(|e| e.to_string())),
    )?;
    // O3: the mail log's daily files are kept `[logs] keep_days`.
    crate::ops::retention::start(
        ctx.config.node.data_dir.join("logs"),
        crate::ops::mail_log::PREFIX,
        ctx.config.logs.keep_days,
    )
    .map_err(EngineError::Thread)?;
    for ((port, listener), addr) in listeners.into_iter().zip(&bound) {
        tracing::info!(port = port.name(), addr = %addr, "SMTP listening");
        executor
            .spawn(smtp::server::serve(
                smtp_ctx.clone(),
                listener,
                port,
                executor.clone(),
            ))
            .detach();
    }

    let count = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS);
    let mut threads = Vec::new();
    for i in 0..count {
        let executor = executor.clone();
        let thread = std::thread::Builder::new()
            .name(format!("engine-{i}"))
            .spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())))
            .map_err(EngineError::Thread)?;
        threads.push(thread);
    }
    Ok(EngineHandle {
        threads,
        scheduler,
        smtp_addr: bound[0],
        submission_addr: bound[1],
        submissions_addr: bound[2],
    })
}

/// Wires the shadow link (`shadow`) to the scheduler: the messages the
/// peer took over leave our queue, and the ones recovered at start wait
/// until the peer said so (or `shadow::GATE_LIMIT`).
fn start_shadow_link(
    config: &Arc<Config>,
    scheduler: &Arc<Scheduler>,
    holder: shadow::Holder,
    origin: shadow::OriginEnd,
    (spool, announce): (Arc<Spool>, smol::channel::Sender<queue::Envelope>),
    had_recovered: bool,
) -> Result<(), EngineError> {
    if had_recovered {
        scheduler.gate_all();
        let gate = scheduler.clone();
        std::thread::Builder::new()
            .name("shadow-gate".into())
            .spawn(move || {
                std::thread::sleep(shadow::GATE_LIMIT);
                gate.open_gate();
            })
            .map_err(EngineError::Thread)?;
    }
    let dropping = scheduler.clone();
    let on_taken = Box::new(move |ids: &[String]| {
        for id in ids {
            match dropping.hold_or_delete(id, queue::scheduler::AfterAttempt::Delete) {
                Ok(_) => {
                    tracing::info!(queue_id = %id, "the peer delivered this message while we were away; dropped from our queue")
                }
                Err(queue::scheduler::QueueCommandError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(queue_id = %id, error = %e, "cannot drop a message the peer took over")
                }
            }
        }
        dropping.open_gate();
    });
    let wiring = shadow::Wiring {
        config: config.clone(),
        spool,
        announce,
        on_taken,
    };
    shadow::start(holder, origin, wiring)?;
    Ok(())
}
