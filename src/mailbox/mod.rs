//! The mailbox role: directory, message store, LMTP local delivery, web.
//!
//! Owns: `directory.db`, the store (metadata folder and data directories),
//! the control sockets (`control.sock` for the directory, `store.sock` for
//! the store), the background compactor, purger (Trash, Junk) and search indexer, the
//! auto-reply worker (`vacation`), and the
//! LMTP, HTTPS and HTTP listeners (all through the modules it starts).
//! `submission` is the way back: the webmail's mail goes to the engine by
//! SMTP submission, like any client's.
//!
//! Invariant: this role is the only one that opens the directory database
//! and the store; the engine sees the directory through the snapshot file
//! and reaches the store only through LMTP.

mod compactor;
mod directory_control;
mod directory_sync;
pub mod folders;
pub mod lmtp;
pub mod local_delivery;
pub mod mailbox_removal;
mod purger;
mod search_indexer;
pub mod store_admin;
pub mod submission;
pub mod vacation;

use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::directory::commands::DirectoryCommand;
use crate::directory::Directory;
use crate::replication::status::PairCommand;
use crate::store::commands::StoreCommand;
use crate::store::{LoginStamp, Op};
use crate::web::session::{LoginEvent, SessionStore};

pub struct MailboxHandle {
    admin_password: Option<String>,
    lmtp: lmtp::LmtpHandle,
    web: crate::web::WebHandle,
}

/// Opens the directory and store and starts LMTP, the web and the control socket.
/// Longest a new or wiped node waits to pull the peer's log before it serves.
const SEED_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

pub fn start(config: Arc<Config>, tls: Arc<rustls::ServerConfig>) -> anyhow::Result<MailboxHandle> {
    let directory = Arc::new(Directory::open(
        &config.directory_db(),
        &config.directory_snapshot(),
    )?);
    let admin_password = directory.ensure_admin()?;
    // Either role may start first; both make (or find) the same secret.
    if let Err(e) = crate::auth::service::ensure(&config.submission_secret()) {
        tracing::error!(error = %e, "webmail cannot send mail: the submission service secret is unusable");
    }
    let store = Arc::new(config.open_store()?);
    // The webmail's sessions, once the web has started (commands that
    // disable a user end their session).
    let sessions_slot: Arc<OnceLock<Arc<SessionStore>>> = Arc::new(OnceLock::new());
    let (commands, command_store, slot) = (directory.clone(), store.clone(), sessions_slot.clone());
    crate::control::serve::<DirectoryCommand>(
        &config.control_socket(),
        Arc::new(move |c| directory_control::handle(&commands, &command_store, &slot, &c)),
    )?;
    let store_commands = store.clone();
    crate::control::serve::<StoreCommand>(
        &config.store_socket(),
        Arc::new(move |c| {
            crate::store::commands::execute(&store_commands, &c).map_err(|e| e.to_string())
        }),
    )?;
    compactor::start(store.clone(), &config.store)?;
    purger::start(store.clone(), directory.clone(), &config.mailbox)?;
    search_indexer::start(store.clone())?;
    let replication = crate::replication::start(&config, store.clone())?;
    if let Some(rep) = &replication {
        rep.seed(SEED_LIMIT);
    }
    if let Some(rep) = replication.clone() {
        crate::control::serve::<PairCommand>(
            &config.pair_socket(),
            Arc::new(move |c| crate::replication::status::execute(&rep, &c)),
        )?;
    }
    let responder = vacation::Responder::start(config.clone(), directory.clone())?;
    let delivery = Arc::new(
        local_delivery::MailboxDelivery::new(
            directory.clone(),
            store.clone(),
            local_delivery::DefaultQuota {
                bytes: config.mailbox.default_quota.0,
                messages: config.mailbox.default_quota_messages,
            },
        )
        .with_responder(responder),
    );
    let lmtp = lmtp::start(
        config.mailbox.lmtp_listen,
        config.node.hostname.clone(),
        delivery,
    )?;
    let web = crate::web::start(crate::web::WebContext {
        config: config.clone(),
        store: store.clone(),
        directory: directory.clone(),
        tls,
    })?;
    let _ = sessions_slot.set(web.webmail().sessions.clone());
    crate::web::console::lifecycle::start(web.webmail().clone())?;
    if let Some(rep) = &replication {
        directory_sync::start(
            directory.clone(),
            store.clone(),
            rep,
            web.webmail().sessions.clone(),
        )?;
        // R6 across the pair: a login on the peer ends the session here.
        let sessions = web.webmail().sessions.clone();
        rep.on_remote_op(Box::new(move |op| {
            if let Op::Login { user, ip, at } = &op.op {
                if let Ok(ip) = ip.parse() {
                    sessions.end_sessions_before(&LoginEvent {
                        user: user.clone(),
                        at: *at,
                        ip,
                        stamp: Some(LoginStamp::of(op)),
                    });
                }
            }
        }));
    }
    // The dashboard's and /metrics' view of the pair link.
    if let Some(rep) = replication {
        web.webmail().monitor().set_pair_probe(Box::new(move || {
            crate::replication::status::pair_state(&rep)
        }));
    }
    Ok(MailboxHandle {
        admin_password,
        lmtp,
        web,
    })
}

impl MailboxHandle {
    pub fn print_summary(&self, config: &Config) {
        let m = &config.mailbox;
        println!("  LMTP (local delivery) lmtp://{}", m.lmtp_listen);
        println!("  webmail and console   https://{}", m.https_listen);
        println!("  redirect to HTTPS     http://{}", m.http_listen);
        println!(
            "  control socket        {}",
            config.control_socket().display()
        );
        if let Some(password) = &self.admin_password {
            println!();
            println!("  Console admin account: admin");
            println!("  Console admin password (shown only this once): {password}");
            println!();
        }
    }

    pub fn wait(self) {
        self.web.wait();
        self.lmtp.wait();
    }
}
