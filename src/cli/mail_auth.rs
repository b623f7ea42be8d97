//! `campusmail dkim ...` and `campusmail dns ...`: files and DNS only, so
//! they work the same whether the appliance runs or not.

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
            let resolver =
                campusmail::engine::delivery::dns::DnsResolver::new(&config.routing.nameservers)?;
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
