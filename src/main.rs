//! The `campusmail` command line. It only parses arguments and calls into
//! the library; every behaviour lives in a module of `campusmail`.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;

mod cli;
use cli::mail_auth;
use cli::*;

use campusmail::appliance;
use campusmail::config::Config;
use campusmail::directory::commands::{execute, DirectoryCommand};
use campusmail::directory::Directory;
use campusmail::engine::queue::commands::{self as queue_commands, OfflineQueue, QueueCommand};
use campusmail::mailbox::store_admin;
use campusmail::replication::admin as pair_admin;
use campusmail::replication::status::PairCommand;
use campusmail::store::commands::StoreCommand;

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
                DomainCommand::Remove { domain } => DirectoryCommand::DomainRemove { domain },
                DomainCommand::List => DirectoryCommand::DomainList,
            },
        ),
        Command::Queue(c) => queue(&config_path, queue_command(c)),
        Command::Pair(c) => {
            let config = load_existing(&config_path)?;
            let output = match c {
                PairCli::Init { listen } => pair_admin::init(&config, &listen)?,
                PairCli::Token => pair_admin::token(&config)?,
                PairCli::Join { listen, token } => {
                    campusmail::replication::join::join(&config, &token, &listen)?
                }
                PairCli::Status => pair_admin::ask(&config, &PairCommand::Status)?,
                PairCli::Verify => pair_admin::ask(&config, &PairCommand::Verify)?,
            };
            print!("{output}");
            Ok(())
        }
        Command::Store(c) => {
            let command = match c {
                StoreCli::Stats { json } => StoreCommand::Stats { json },
                StoreCli::Fsck { repair } => StoreCommand::Fsck { repair },
                StoreCli::Compact { min_garbage } => StoreCommand::Compact {
                    min_garbage_percent: min_garbage,
                },
                StoreCli::Rebalance => StoreCommand::Rebalance,
                StoreCli::Drain { dir } => StoreCommand::Drain { dir },
                StoreCli::Undrain { dir } => StoreCommand::Undrain { dir },
            };
            let output = store_admin::run(&load_existing(&config_path)?, &command)?;
            print!("{output}");
            Ok(())
        }
        Command::Dkim(c) => mail_auth::dkim(&load_existing(&config_path)?, c),
        Command::Dns(c) => mail_auth::dns(&load_existing(&config_path)?, c),
        Command::Alias(c) => manage(
            &config_path,
            match c {
                AliasCommand::Add { alias, targets } => {
                    DirectoryCommand::AliasAdd { alias, targets }
                }
                AliasCommand::List => DirectoryCommand::AliasList,
                AliasCommand::Remove { alias } => DirectoryCommand::AliasRemove { alias },
                AliasCommand::Members { alias, add, remove } => {
                    DirectoryCommand::AliasMembers { alias, add, remove }
                }
            },
        ),
        Command::Class(c) => manage(
            &config_path,
            match c {
                ClassCommand::Add { name, settings } => DirectoryCommand::ClassAdd {
                    name,
                    settings: settings.settings(),
                },
                ClassCommand::Set { name, settings } => DirectoryCommand::ClassSet {
                    name,
                    settings: settings.settings(),
                },
                ClassCommand::Remove { name } => DirectoryCommand::ClassRemove { name },
                ClassCommand::List => DirectoryCommand::ClassList,
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
        UserCommand::Import {
            file,
            skip_existing,
        } => DirectoryCommand::UserImport(campusmail::directory::import::ImportRequest {
            rows: campusmail::directory::import::read_rows(&file)?,
            skip_existing,
        }),
        UserCommand::Passwd {
            address,
            password_stdin,
        } => DirectoryCommand::UserPasswd {
            address,
            password: read_password(password_stdin)?,
        },
        UserCommand::Disable { address } => DirectoryCommand::UserDisable { address },
        UserCommand::SetClass {
            address,
            class,
            leave_date,
        } => DirectoryCommand::UserSetClass {
            address,
            class,
            leave_date,
        },
        UserCommand::SetName { address, name } => DirectoryCommand::UserSetName {
            address,
            display_name: name,
        },
        UserCommand::Export => DirectoryCommand::UserExport,
        UserCommand::Delete {
            address,
            delete_mail,
        } => {
            if !delete_mail {
                bail!("deleting {address} deletes all of their mail for good, on both nodes; to keep it, run `campusmail user disable {address}` instead; to go ahead, add --delete-mail");
            }
            DirectoryCommand::UserDelete { address }
        }
        UserCommand::Enable { address } => DirectoryCommand::UserEnable { address },
        UserCommand::Quota {
            address,
            bytes,
            messages,
        } => {
            if bytes.is_none() && messages.is_none() {
                bail!("say what to set: --bytes SIZE and/or --messages COUNT (or \"default\" / \"unlimited\")");
            }
            DirectoryCommand::UserQuota {
                address,
                bytes,
                messages,
            }
        }
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
    let new_domain = match &command {
        DirectoryCommand::DomainAdd { domain } => Some(domain.trim().to_ascii_lowercase()),
        _ => None,
    };
    let output = match campusmail::control::send(&config.control_socket(), &command)? {
        Some(reply) if reply.ok => reply.output,
        Some(reply) => bail!("{}", reply.output),
        None if matches!(command, DirectoryCommand::UserDelete { .. }) => {
            bail!("deleting a user empties their mailbox, which the running appliance does: start it (campusmail run) and run this command again")
        }
        None => {
            let directory = Directory::open(&config.directory_db(), &config.directory_snapshot())?;
            execute(&directory, &command)?
        }
    };
    if output.ends_with('\n') {
        print!("{output}");
    } else if !output.is_empty() {
        println!("{output}");
    }
    // Every domain of ours signs its mail from the start (R7).
    if let Some(domain) = new_domain {
        let keys = campusmail::auth::keys::ensure_domain_keys(&config.dkim_dir(), &domain)?;
        println!(
            "DKIM keys made for {domain} ({}); publish its DNS records: campusmail dns records {domain}",
            keys.active.iter().map(|k| k.selector.as_str()).collect::<Vec<_>>().join(", ")
        );
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
