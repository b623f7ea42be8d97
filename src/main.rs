//! The `campusmail` command line. It only parses arguments and calls into
//! the library; every behaviour lives in a module of `campusmail`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use campusmail::appliance::{self, Role};
use campusmail::config::Config;
use campusmail::directory::commands::{execute, DirectoryCommand};
use campusmail::directory::Directory;
use campusmail::engine::queue::commands::{self as queue_commands, OfflineQueue, QueueCommand};

#[derive(Parser)]
#[command(
    name = "campusmail",
    version,
    about = "Campus mail appliance: SMTP, queues, store, webmail and console in one binary"
)]
struct Cli {
    /// Configuration file (else $CAMPUSMAIL_CONFIG, else ./campusmail-data/appliance.toml).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance (every role by default); sets itself up on first run.
    Run {
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
    },
    /// Write a commented appliance.toml and a self-signed certificate.
    Init {
        /// This node's name.
        #[arg(long, default_value = "node-a")]
        node: String,
        /// Host name for SMTP greetings and the certificate.
        #[arg(long, default_value = "mail.campus.test")]
        hostname: String,
    },
    /// Manage mail users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the mail domains served here.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage aliases (addresses that deliver to other users).
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Look at and act on the mail queue (normal and bulk lanes).
    #[command(subcommand)]
    Queue(QueueCli),
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their state and class.
    List,
    /// Change a user's password (read from standard input).
    Passwd {
        address: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Refuse logins and new mail for a user; stored mail is kept.
    Disable { address: String },
    /// Allow a disabled user again.
    Enable { address: String },
}

#[derive(Subcommand)]
enum DomainCommand {
    /// Serve mail for a domain.
    Add { domain: String },
    /// List the domains served here.
    List,
}

#[derive(Subcommand)]
enum AliasCommand {
    /// Deliver mail for ALIAS to one or more local users.
    Add {
        alias: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List aliases.
    List,
}

#[derive(Subcommand)]
enum QueueCli {
    /// Every queued message with its lane, age, state and pending recipients.
    List,
    /// One message's envelope and each recipient's state and last error.
    Show { id: String },
    /// Stop attempting a message until it is released.
    Hold { id: String },
    /// Attempt a held message again.
    Release { id: String },
    /// Attempt a message now instead of at its next scheduled try.
    Retry { id: String },
    /// Remove a message from the queue without delivering it or bouncing it.
    Delete { id: String },
    /// Messages, pending recipients and held messages per lane.
    Stats,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("campusmail: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let config_path = Config::locate(cli.config.as_deref());
    match cli.command {
        Command::Version => {
            println!("campusmail {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Init { node, hostname } => {
            let report = appliance::init(&config_path, &node, &hostname)?;
            if report.created_config {
                println!("wrote {}", report.config_path.display());
            } else {
                println!("{} exists; left as it is", report.config_path.display());
            }
            if report.created_certificate {
                println!("made a self-signed certificate (replace it with the university's)");
            }
            Ok(())
        }
        Command::Run { role } => {
            init_logging();
            if !config_path.exists() {
                let report = appliance::init(&config_path, "node-a", "mail.campus.test")?;
                println!("first run: wrote {}", report.config_path.display());
            }
            appliance::run(Config::load(&config_path)?, role)
        }
        Command::User(c) => manage(&config_path, user_command(c)?),
        Command::Domain(c) => manage(
            &config_path,
            match c {
                DomainCommand::Add { domain } => DirectoryCommand::DomainAdd { domain },
                DomainCommand::List => DirectoryCommand::DomainList,
            },
        ),
        Command::Queue(c) => queue(&config_path, queue_command(c)),
        Command::Alias(c) => manage(
            &config_path,
            match c {
                AliasCommand::Add { alias, targets } => {
                    DirectoryCommand::AliasAdd { alias, targets }
                }
                AliasCommand::List => DirectoryCommand::AliasList,
            },
        ),
    }
}

fn user_command(c: UserCommand) -> anyhow::Result<DirectoryCommand> {
    Ok(match c {
        UserCommand::Add {
            address,
            password_stdin,
        } => DirectoryCommand::UserAdd {
            address,
            password: read_password(password_stdin)?,
        },
        UserCommand::List => DirectoryCommand::UserList,
        UserCommand::Passwd {
            address,
            password_stdin,
        } => DirectoryCommand::UserPasswd {
            address,
            password: read_password(password_stdin)?,
        },
        UserCommand::Disable { address } => DirectoryCommand::UserDisable { address },
        UserCommand::Enable { address } => DirectoryCommand::UserEnable { address },
    })
}

fn queue_command(c: QueueCli) -> QueueCommand {
    match c {
        QueueCli::List => QueueCommand::List,
        QueueCli::Show { id } => QueueCommand::Show { id },
        QueueCli::Hold { id } => QueueCommand::Hold { id },
        QueueCli::Release { id } => QueueCommand::Release { id },
        QueueCli::Retry { id } => QueueCommand::Retry { id },
        QueueCli::Delete { id } => QueueCommand::Delete { id },
        QueueCli::Stats => QueueCommand::Stats,
    }
}

/// Runs a queue command in the running engine, or on the spool when it is stopped.
fn queue(config_path: &Path, command: QueueCommand) -> anyhow::Result<()> {
    let config = load_existing(config_path)?;
    let output = match campusmail::control::send(&config.engine_socket(), &command)? {
        Some(reply) if reply.ok => reply.output,
        Some(reply) => bail!("{}", reply.output),
        None => {
            let offline = OfflineQueue::open(&config.spool_dir())?;
            queue_commands::execute(&offline, &command)?
        }
    };
    println!("{output}");
    Ok(())
}

/// Passwords never go on the command line, where `ps` and shell history see them.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if !from_stdin {
        bail!("give the password on standard input with --password-stdin, e.g. `echo 'secret' | campusmail user add alice@campus.ac.kr --password-stdin`");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("standard input held no password");
    }
    Ok(password)
}

/// Runs a directory command in the running appliance, or directly when it is stopped.
fn manage(config_path: &Path, command: DirectoryCommand) -> anyhow::Result<()> {
    let config = load_existing(config_path)?;
    let output = match campusmail::control::send(&config.control_socket(), &command)? {
        Some(reply) if reply.ok => reply.output,
        Some(reply) => bail!("{}", reply.output),
        None => {
            let directory = Directory::open(&config.directory_db(), &config.directory_snapshot())?;
            execute(&directory, &command)?
        }
    };
    if !output.is_empty() {
        println!("{output}");
    }
    Ok(())
}

fn load_existing(config_path: &Path) -> anyhow::Result<Config> {
    if !config_path.exists() {
        bail!(
            "no configuration at {}; run `campusmail init` (or `campusmail run`) first, or point --config / $CAMPUSMAIL_CONFIG at it",
            config_path.display()
        );
    }
    Ok(Config::load(config_path)?)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAMPUSMAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
