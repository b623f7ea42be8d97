//! The command line's grammar (clap): every subcommand and option of
//! `campusmail`, as data. `main.rs` turns it into calls to the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use campusmail::appliance::Role;
use campusmail::directory::commands::ClassSettings;

pub mod mail_auth;

#[derive(Parser)]
#[command(
    name = "campusmail",
    version,
    about = "Campus mail appliance: SMTP, queues, store, webmail and console in one binary"
)]
pub struct Cli {
    /// Configuration file (else $CAMPUSMAIL_CONFIG, else ./campusmail-data/appliance.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum UserCommand {
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
pub enum ClassCommand {
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
pub struct ClassArgs {
    /// Default mailbox size of the class's users ("2GB"; "default"; "unlimited").
    #[arg(long, value_name = "SIZE")]
    pub quota_bytes: Option<String>,
    /// Default message count ("50000"; "default"; "unlimited").
    #[arg(long, value_name = "COUNT")]
    pub quota_messages: Option<String>,
    /// Disable users this many days after their leave date ("never": not automatically).
    #[arg(long, value_name = "DAYS")]
    pub disable_after_days: Option<String>,
}

impl ClassArgs {
    pub fn settings(self) -> ClassSettings {
        ClassSettings {
            quota_bytes: self.quota_bytes,
            quota_messages: self.quota_messages,
            disable_after_days: self.disable_after_days,
        }
    }
}

#[derive(Subcommand)]
pub enum PairCli {
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
pub enum StoreCli {
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
pub enum DomainCommand {
    /// Serve mail for a domain.
    Add { domain: String },
    /// Stop serving a domain that no user or alias uses any more.
    Remove { domain: String },
    /// List the domains served here.
    List,
}

#[derive(Subcommand)]
pub enum AliasCommand {
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
pub enum QueueCli {
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
pub enum DkimCli {
    /// Every domain's active and retired keys (selector, algorithm, age).
    List,
    /// Make a new key pair for DOMAIN; the old pair stays published until `dkim forget`.
    Rotate { domain: String },
    /// Drop a retired key once its DNS record has been removed.
    Forget { domain: String, selector: String },
}

#[derive(Subcommand)]
pub enum DnsCli {
    /// Print the records DOMAIN must publish, one per line: NAME, TYPE, VALUE.
    Records { domain: String },
    /// Look the records up in DNS and say what is missing or wrong.
    Check { domain: String },
}
