//! `campusmail pair ...` from the command line.
//!
//! `init`, `token` and `join` work on files (certificates, appliance.toml),
//! so they run with the appliance stopped (`join` needs the *first* node
//! running). `status` and `verify` ask the running mailbox role over
//! `pair.sock`.

use super::join;
use super::pki::PairFiles;
use super::status::PairCommand;
use crate::config::Config;

/// First node: cluster CA, our certificate, `[pair] listen`, a join token.
pub fn init(config: &Config, listen: &str) -> anyhow::Result<String> {
    if listen.parse::<std::net::SocketAddr>().is_err() {
        anyhow::bail!("--listen must be ip:port, e.g. 10.0.0.1:2700");
    }
    let files = PairFiles::new(&config.node.data_dir);
    files.init(&config.node.name)?;
    crate::config::edit::set_strings(&config.source, "pair", &[("listen", listen)])?;
    let mut config = config.clone();
    config.pair.listen = listen.to_string();
    let token = join::make_token(&config)?;
    Ok(format!(
        "made the pair's certificate authority and {}'s certificate in {}\n\
         the replication link will listen on {listen} (restart campusmail here)\n\n\
         on the second node, with campusmail running here, run (valid 24 hours, once):\n\n  \
         campusmail pair join --listen <its ip:port> {token}\n",
        config.node.name,
        files.dir.display()
    ))
}

/// A fresh one-time token (the first one expired or was lost).
pub fn token(config: &Config) -> anyhow::Result<String> {
    Ok(format!(
        "campusmail pair join --listen <ip:port> {}\n",
        join::make_token(config)?
    ))
}

/// `status` or `verify`, asked of the running mailbox role.
pub fn ask(config: &Config, command: &PairCommand) -> anyhow::Result<String> {
    match crate::control::send(&config.pair_socket(), command)? {
        Some(reply) if reply.ok => Ok(reply.output),
        Some(reply) => anyhow::bail!("{}", reply.output.trim_end()),
        None if config.pair.listen.is_empty() => {
            anyhow::bail!(
                "this node is not paired ([pair] listen is empty); see `campusmail pair init`"
            )
        }
        None => anyhow::bail!(
            "campusmail (the mailbox role) is not running here; start it to see the link"
        ),
    }
}
