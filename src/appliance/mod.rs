//! Starting the appliance: first-run set-up and running the roles.
//!
//! Owns: the data folder's creation (owner-only), the first-run
//! `appliance.toml`, and the order in which the roles come up.
//!
//! Invariants:
//! - `Role::All` starts exactly what `Role::Mailbox` and `Role::Engine` start
//!   apart; the roles talk LMTP over loopback either way (one code path).
//! - The admin password is printed once: when it is made, never again.
//! - The mailbox role is up (LMTP listening) before the engine starts
//!   delivering in `Role::All`; when it is not (split roles), mail waits in
//!   the engine's queue.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::config::{default_config_text, Config};
use crate::directory::snapshot::SnapshotWatcher;

/// Which daemon(s) this process runs (R2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Every role in one process: the embedded default.
    All,
    /// SMTP, the queue and delivery.
    Engine,
    /// Directory, store, LMTP, webmail and console.
    Mailbox,
}

/// What `init` made, for the CLI to report.
pub struct InitReport {
    pub config_path: PathBuf,
    pub created_config: bool,
    pub created_certificate: bool,
}

/// Makes the data folder, the commented `appliance.toml` and the certificate
/// when they are missing. Leaves existing files alone.
pub fn init(config_path: &Path, node: &str, hostname: &str) -> anyhow::Result<InitReport> {
    let created_config = !config_path.exists();
    if created_config {
        let folder = config_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(folder)?;
        std::fs::write(config_path, default_config_text(node, hostname))
            .with_context(|| format!("cannot write {}", config_path.display()))?;
    }
    let config = Config::load(config_path)?;
    create_private_dir(&config.node.data_dir)?;
    let created_certificate = crate::tls::ensure_certificate(&config)?;
    Ok(InitReport {
        config_path: config_path.to_path_buf(),
        created_config,
        created_certificate,
    })
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))
}

/// Runs `role` until the process is stopped.
pub fn run(config: Config, role: Role) -> anyhow::Result<()> {
    let config = Arc::new(config);
    create_private_dir(&config.node.data_dir)?;
    crate::tls::ensure_certificate(&config)?;
    let tls = crate::tls::server_config(&config)?;
    println!(
        "campusmail {} node {} ({}), data in {}",
        env!("CARGO_PKG_VERSION"),
        config.node.name,
        config.node.hostname,
        config.node.data_dir.display()
    );

    let mailbox = match role {
        Role::All | Role::Mailbox => Some(crate::mailbox::start(config.clone(), tls.clone())?),
        Role::Engine => None,
    };
    let engine = match role {
        Role::All | Role::Engine => {
            let directory = Arc::new(SnapshotWatcher::new(config.directory_snapshot()));
            let handle = crate::engine::start(crate::engine::EngineContext {
                config: config.clone(),
                directory,
                tls,
            })?;
            let e = &config.engine;
            println!("  SMTP (MX)             smtp://{}", e.smtp_listen);
            println!("  submission (STARTTLS) smtp://{}", e.submission_listen);
            println!("  submission (TLS)      smtps://{}", e.submissions_listen);
            if role == Role::Engine {
                println!("  local delivery to     lmtp://{}", e.lmtp_target);
            }
            Some(handle)
        }
        Role::Mailbox => None,
    };
    if let Some(m) = &mailbox {
        m.print_summary(&config);
    }
    println!("ready");
    if let Some(engine) = engine {
        engine.wait();
    }
    if let Some(mailbox) = mailbox {
        mailbox.wait();
    }
    Ok(())
}
