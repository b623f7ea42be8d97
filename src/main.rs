//! The `campusmail` command line. It only parses arguments and calls into
//! the library; every behaviour lives in a module of `campusmail`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use campusmail::appliance::{self, Role};
use campusmail::config::Config;
use campusmail::directory::commands::{execute, ClassSettings, DirectoryCommand};
use campusmail::directory::Directory;
use campusmail::engine::queue::commands::{self as queue_commands, OfflineQueue, QueueCommand};
use campusmail::mailbox::store_admin;
use campusmail::replication::admin as pair_admin;
use campusmail::replication::status::PairCommand;
use campusmail::store::commands::StoreCommand;

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
    /// Manage aliases and groups (addresses that deliver to other users).
    #[command(subcommand)]
    Alias(AliasCommand),
    /// User classes (staff, student, ...): default quotas, lifecycle rule, seats.
    #[command(subcommand)]
    Class(ClassCommand),
    /// Look at and act on the mail queue (normal and bulk lanes).
    #[command(subcommand)]
    Queue(QueueCli),
    /// The mail store: statistics, checks, compaction, data directories.
    #[command(subcommand)]
    Store(StoreCli),
    /// The active-active pair: certificates, joining, link status.
    #[command(subcommand)]
    Pair(PairCli),
    /// DKIM signing keys of our domains.
    #[command(subcommand)]
    Dkim(DkimCli),
    /// The DNS records our domains must publish (MX, SPF, DKIM, DMARC).
    #[command(subcommand)]
    Dns(DnsCli),
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
    /// Add many users from a CSV file (`-`: standard input) with the columns
    /// address, class, password; all rows or none (see the admin guide).
    Import {
        file: PathBuf,
        /// Skip rows whose user already exists instead of refusing the file.
        #[arg(long)]
        skip_existing: bool,
    },
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
    /// Set a user's mailbox limits: a size ("2GB", "500MiB") or message
    /// count, "default" (the [mailbox] defaults) or "unlimited".
    Quota {
        address: String,
        #[arg(long, value_name = "SIZE")]
        bytes: Option<String>,
        #[arg(long, value_name = "COUNT")]
        messages: Option<String>,
    },
    /// Put a user in a class, optionally with the day they leave.
    SetClass {
        address: String,
        class: String,
        /// YYYY-MM-DD, or "none" to clear it.
        #[arg(long, value_name = "DATE")]
        leave_date: Option<String>,
    },
    /// Set a user's display name ("" clears it).
    SetName { address: String, name: String },
    /// Print every user as CSV (the columns `user import` reads; no passwords).
    Export,
    /// Delete a user and ALL their mail, for good, on both nodes (the
    /// appliance must run; to keep the mail, use `user disable` instead).
    Delete {
        address: String,
        /// Confirms that the mailbox is to be deleted for good.
        #[arg(long)]
        delete_mail: bool,
    },
}

#[derive(Subcommand)]
enum ClassCommand {
    /// Define a class.
    Add {
        name: String,
        #[command(flatten)]
        settings: ClassArgs,
    },
    /// Change a class's defaults or rule.
    Set {
        name: String,
        #[command(flatten)]
        settings: ClassArgs,
    },
    /// Remove a class that no user is in.
    Remove { name: String },
    /// Every class with its defaults, rule and seats (enabled / disabled users).
    List,
}

#[derive(clap::Args)]
struct ClassArgs {
    /// Default mailbox size of the class's users ("2GB"; "default"; "unlimited").
    #[arg(long, value_name = "SIZE")]
    quota_bytes: Option<String>,
    /// Default message count ("50000"; "default"; "unlimited").
    #[arg(long, value_name = "COUNT")]
    quota_messages: Option<String>,
    /// Disable users this many days after their leave date ("never": not automatically).
    #[arg(long, value_name = "DAYS")]
    disable_after_days: Option<String>,
}

impl ClassArgs {
    fn settings(self) -> ClassSettings {
        ClassSettings {
            quota_bytes: self.quota_bytes,
            quota_messages: self.quota_messages,
            disable_after_days: self.disable_after_days,
        }
    }
}

#[derive(Subcommand)]
enum PairCli {
    /// On the first node: make the pair's CA and a one-time join token.
    Init {
        /// Where this node's replication link listens (ip:port).
        #[arg(long)]
        listen: String,
    },
    /// On the first node: a new one-time join token.
    Token,
    /// On the second node: join the first node with its token.
    Join {
        /// Where this node's replication link listens (ip:port).
        #[arg(long)]
        listen: String,
        token: String,
    },
    /// Link state, lag and errors (the appliance must be running).
    Status,
    /// Compare both nodes' mail state; exits non-zero if they differ.
    Verify,
}

#[derive(Subcommand)]
enum StoreCli {
    /// Bytes, garbage, blobs, free space and operations per data directory.
    Stats {
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Check every blob hash, reference count and index entry.
    Fsck {
        /// Fix what can be fixed (counts, listings); never touches mail bytes.
        #[arg(long)]
        repair: bool,
    },
    /// Compact sealed segments now (the background compactor also does).
    Compact {
        /// Only segments with at least this much garbage (percent).
        #[arg(long, default_value_t = 0)]
        min_garbage: u64,
    },
    /// Move blobs to the data directory placement picks (after adding one).
    Rebalance,
    /// Empty a data directory so it can be removed from appliance.toml.
    Drain { dir: PathBuf },
    /// Take a drained data directory back into use.
    Undrain { dir: PathBuf },
}

#[derive(Subcommand)]
enum DomainCommand {
    /// Serve mail for a domain.
    Add { domain: String },
    /// Stop serving a domain that no user or alias uses any more.
    Remove { domain: String },
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
    /// Remove an alias or group (its members' mailboxes stay).
    Remove { alias: String },
    /// Add or remove members of an alias or group.
    Members {
        alias: String,
        #[arg(long, value_name = "ADDRESS")]
        add: Vec<String>,
        #[arg(long, value_name = "ADDRESS")]
        remove: Vec<String>,
    },
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

#[derive(Subcommand)]
enum DkimCli {
    /// Every domain's active and retired keys (selector, algorithm, age).
    List,
    /// Make a new key pair for DOMAIN; the old pair stays published until `dkim forget`.
    Rotate { domain: String },
    /// Drop a retired key once its DNS record has been removed.
    Forget { domain: String, selector: String },
}

#[derive(Subcommand)]
enum DnsCli {
    /// Print the records DOMAIN must publish, one per line: NAME, TYPE, VALUE.
    Records { domain: String },
    /// Look the records up in DNS and say what is missing or wrong.
    Check { domain: String },
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

/// `campusmail dkim ...` and `campusmail dns ...`: files and DNS only, so
/// they work the same whether the appliance runs or not.
mod mail_auth {
    use super::{DkimCli, DnsCli};
    use anyhow::bail;
    use campusmail::auth::{dns_records, keys};
    use campusmail::config::Config;

    fn domain_keys(config: &Config, domain: &str) -> anyhow::Result<keys::DomainKeys> {
        let domain = domain.trim().to_ascii_lowercase();
        Ok(keys::ensure_domain_keys(&config.dkim_dir(), &domain)?)
    }

    pub fn dkim(config: &Config, command: DkimCli) -> anyhow::Result<()> {
        match command {
            DkimCli::List => {
                for d in keys::load_all(&config.dkim_dir())? {
                    for (state, list) in [("active", &d.active), ("retired", &d.retired)] {
                        for k in list.iter() {
                            println!("{}\t{}\t{:?}\t{state}", d.domain, k.selector, k.algorithm);
                        }
                    }
                }
            }
            DkimCli::Rotate { domain } => {
                let d = keys::rotate(&config.dkim_dir(), &domain.trim().to_ascii_lowercase())?;
                println!(
                    "new keys for {}: {}",
                    d.domain,
                    d.active
                        .iter()
                        .map(|k| k.selector.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!("publish the new records (campusmail dns records {}); the engine signs with them within a minute.", d.domain);
                println!("keep the old records until mail signed with them has been delivered, then `campusmail dkim forget`.");
            }
            DkimCli::Forget { domain, selector } => {
                keys::forget_retired(
                    &config.dkim_dir(),
                    &domain.trim().to_ascii_lowercase(),
                    &selector,
                )?;
                println!("retired key {selector} of {domain} forgotten; remove its DNS record if it is still published");
            }
        }
        Ok(())
    }

    pub fn dns(config: &Config, command: DnsCli) -> anyhow::Result<()> {
        let mail_host = config.node.hostname.clone();
        match command {
            DnsCli::Records { domain } => {
                let keys = domain_keys(config, &domain)?;
                for r in dns_records::records(&keys.domain, &mail_host, &keys) {
                    println!("# {}", r.why);
                    println!("{}.\t{}\t{}", r.name.trim_end_matches('.'), r.kind, r.value);
                }
            }
            DnsCli::Check { domain } => {
                let keys = domain_keys(config, &domain)?;
                let resolver = campusmail::engine::delivery::dns::DnsResolver::new(
                    &config.routing.nameservers,
                )?;
                let findings = smol::block_on(dns_records::check(
                    &resolver,
                    &keys.domain,
                    &mail_host,
                    &keys,
                ));
                let mut all_ok = true;
                for f in &findings {
                    all_ok &= f.ok;
                    println!(
                        "{}\t{}\t{}",
                        if f.ok { "ok" } else { "PROBLEM" },
                        f.record,
                        f.message
                    );
                }
                if !all_ok {
                    bail!(
                        "some records of {} are missing or wrong (see above)",
                        keys.domain
                    );
                }
            }
        }
        Ok(())
    }
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
