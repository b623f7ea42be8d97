//! The DNS records a mail domain needs (`campusmail dns records DOMAIN`) and
//! a check of what DNS actually serves (`campusmail dns check DOMAIN`).
//!
//! Records: MX to the mail host; SPF `v=spf1 mx a:<mail_host> -all`; one DKIM
//! TXT per active and retired key; DMARC starting at `p=quarantine` with
//! aggregate reports to postmaster. The check looks each one up through
//! `engine::delivery::dns` and says in plain words what is missing or wrong;
//! TXT values are compared ignoring whitespace, quotes and the splitting into
//! 255-byte strings. An SPF record that differs from ours but still allows
//! the mail host's addresses (evaluated by mail-auth) counts as fine.
//!
//! Owns: nothing.
//!
//! Reads untrusted input: yes (DNS answers; only compared, never trusted).

use std::time::Duration;

use mail_auth::spf::verify::SpfParameters;
use mail_auth::SpfResult;

use super::keys::{DkimKey, DomainKeys};
use crate::engine::delivery::dns::{DnsFailure, DnsResolver};

/// Longest one TXT lookup (or one SPF evaluation) of the check may take.
const LOOKUP_LIMIT: Duration = Duration::from_secs(20);

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// The owner name, without a trailing dot.
    pub name: String,
    /// "MX" or "TXT".
    pub kind: &'static str,
    /// The record data: "10 mail.campus.example." or the whole TXT text.
    pub value: String,
    /// One plain sentence: why the record is needed.
    pub why: String,
}

impl DnsRecord {
    /// The record as a zone-file line; TXT text is quoted and split into
    /// strings of at most 255 bytes (RFC 1035 §3.3.14).
    pub fn zone_line(&self) -> String {
        if self.kind != "TXT" {
            return format!("{}. 3600 IN {} {}", self.name, self.kind, self.value);
        }
        let strings: Vec<String> = self
            .value
            .as_bytes()
            .chunks(255)
            .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
            .collect();
        format!("{}. 3600 IN TXT {}", self.name, strings.join(" "))
    }
}

/// One result of `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    /// Which record: "MX campus.example", "DKIM cm20260115-rsa", ...
    pub record: String,
    /// Plain words: what is fine, or what is missing/wrong and what to publish.
    pub message: String,
}

/// The MX, SPF, DKIM (active and retired keys) and DMARC records to publish
/// for `domain`, whose mail goes to and comes from `mail_host`.
pub fn records(domain: &str, mail_host: &str, keys: &DomainKeys) -> Vec<DnsRecord> {
    let domain = plain(domain);
    let mail_host = plain(mail_host);
    let mut out = vec![
        DnsRecord {
            name: domain.clone(),
            kind: "MX",
            value: format!("10 {mail_host}."),
            why: format!("tells other servers to deliver mail for {domain} to {mail_host}"),
        },
        DnsRecord {
            name: domain.clone(),
            kind: "TXT",
            value: expected_spf(&mail_host),
            why: format!(
                "SPF: says only your MX hosts and {mail_host} send mail for {domain}; \
                 \"-all\" asks other servers to treat any other sender as a forgery \
                 (add the outbound hosts of any service that sends as {domain})"
            ),
        },
    ];
    for key in &keys.active {
        out.push(DnsRecord {
            name: dkim_name(&key.selector, &domain),
            kind: "TXT",
            value: key.dns_value(),
            why: format!(
                "DKIM key `{}` ({}): lets other servers check the signatures campusmail puts on mail from {domain}",
                key.selector,
                key.algorithm.dns_name()
            ),
        });
    }
    for key in &keys.retired {
        out.push(DnsRecord {
            name: dkim_name(&key.selector, &domain),
            kind: "TXT",
            value: key.dns_value(),
            why: format!(
                "retired DKIM key `{}`: keep it published for a week after the rotation so mail signed \
                 just before still verifies, then delete it and tell campusmail it is gone",
                key.selector
            ),
        });
    }
    out.push(DnsRecord {
        name: format!("_dmarc.{domain}"),
        kind: "TXT",
        value: expected_dmarc(&domain),
        why: format!(
            "DMARC: asks other servers to put mail that falsely claims to be from {domain} in spam and \
             to send daily reports to postmaster@{domain}; once the reports show all your real mail \
             passes, change p=quarantine to p=reject"
        ),
    });
    out
}

/// Looks each expected record up through `resolver` and compares it.
pub async fn check(
    resolver: &DnsResolver,
    domain: &str,
    mail_host: &str,
    keys: &DomainKeys,
) -> Vec<Finding> {
    let domain = plain(domain);
    let mail_host = plain(mail_host);
    let mut findings = vec![check_mx(resolver, &domain, &mail_host).await];
    let (address_finding, host_ips) = check_host_address(resolver, &mail_host).await;
    findings.push(address_finding);
    findings.push(check_spf(resolver, &domain, &mail_host, &host_ips).await);
    for (key, retired) in keys
        .active
        .iter()
        .map(|k| (k, false))
        .chain(keys.retired.iter().map(|k| (k, true)))
    {
        findings.push(check_dkim(resolver, &domain, key, retired).await);
    }
    findings.push(check_dmarc(resolver, &domain).await);
    findings
}

async fn check_mx(resolver: &DnsResolver, domain: &str, mail_host: &str) -> Finding {
    let record = format!("MX {domain}");
    let publish = format!("publish `{domain}. MX 10 {mail_host}.`");
    match resolver.mx(domain).await {
        Ok(mxs) if mxs.iter().any(|mx| mx.exchange.eq_ignore_ascii_case(mail_host)) => Finding {
            ok: true,
            record,
            message: format!("mail for {domain} goes to {mail_host}"),
        },
        Ok(mxs) if mxs.is_empty() => Finding {
            ok: false,
            record,
            message: format!("{domain} has no MX record, so other servers may not find where to deliver its mail: {publish}"),
        },
        Ok(mxs) => {
            let found: Vec<&str> = mxs.iter().map(|mx| mx.exchange.as_str()).collect();
            Finding {
                ok: false,
                record,
                message: format!(
                    "the MX records of {domain} point to {} but not to {mail_host}: {publish} (and remove the others once mail flows)",
                    found.join(", ")
                ),
            }
        }
        Err(failure) => lookup_failed(record, domain, &failure, &publish),
    }
}

async fn check_host_address(
    resolver: &DnsResolver,
    mail_host: &str,
) -> (Finding, Vec<std::net::IpAddr>) {
    let record = format!("A/AAAA {mail_host}");
    match resolver.ips(mail_host).await {
        Ok(ips) if !ips.is_empty() => {
            let list: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
            let finding = Finding {
                ok: true,
                record,
                message: format!("{mail_host} has the address {}", list.join(", ")),
            };
            (finding, ips)
        }
        Ok(_) => (
            Finding {
                ok: false,
                record,
                message: format!("{mail_host} has no address (A or AAAA record): publish the address of this server under that name"),
            },
            Vec::new(),
        ),
        Err(failure) => (
            lookup_failed(record, mail_host, &failure, "publish the address of this server under that name"),
            Vec::new(),
        ),
    }
}

async fn check_spf(
    resolver: &DnsResolver,
    domain: &str,
    mail_host: &str,
    host_ips: &[std::net::IpAddr],
) -> Finding {
    let record = format!("SPF {domain}");
    let expected = expected_spf(mail_host);
    let publish = format!("publish the TXT record `{expected}` at {domain}");
    let texts = match txt(resolver, domain).await {
        Ok(texts) => texts,
        Err(failure) => return lookup_failed(record, domain, &failure, &publish),
    };
    let spf: Vec<&String> = texts
        .iter()
        .filter(|t| {
            let t = t.trim_start().to_ascii_lowercase();
            t == "v=spf1" || t.starts_with("v=spf1 ")
        })
        .collect();
    match spf.as_slice() {
        [] => Finding {
            ok: false,
            record,
            message: format!("{domain} has no SPF record, so nothing tells other servers which hosts send its mail: {publish}"),
        },
        [found] if same_text(found, &expected, true) => Finding {
            ok: true,
            record,
            message: format!("the SPF record is as expected: {expected}"),
        },
        [found] => {
            let allowed = spf_allows(resolver, domain, mail_host, host_ips).await;
            if allowed {
                Finding {
                    ok: true,
                    record,
                    message: format!(
                        "the SPF record `{found}` differs from ours but allows {mail_host} to send for {domain}"
                    ),
                }
            } else {
                Finding {
                    ok: false,
                    record,
                    message: format!(
                        "the SPF record `{found}` does not allow {mail_host} to send mail for {domain}: \
                         add `a:{mail_host}` to it, or {publish}"
                    ),
                }
            }
        }
        _ => Finding {
            ok: false,
            record,
            message: format!(
                "{domain} has {} SPF records; more than one makes SPF fail everywhere (RFC 7208 §4.5): \
                 keep one, merged, e.g. `{expected}`",
                spf.len()
            ),
        },
    }
}

/// Whether SPF passes for every address of `mail_host` sending as
/// postmaster@`domain` (no address: false).
async fn spf_allows(
    resolver: &DnsResolver,
    domain: &str,
    mail_host: &str,
    host_ips: &[std::net::IpAddr],
) -> bool {
    if host_ips.is_empty() {
        return false;
    }
    for &ip in host_ips {
        let verifier = resolver.mail_authenticator();
        let (host, sender) = (mail_host.to_string(), format!("postmaster@{domain}"));
        let evaluation = async move {
            verifier
                .verify_spf(SpfParameters::verify_mail_from(ip, &host, &host, &sender))
                .await
                .result()
        };
        if resolver.run_within(LOOKUP_LIMIT, evaluation).await != Ok(SpfResult::Pass) {
            return false;
        }
    }
    true
}

async fn check_dkim(resolver: &DnsResolver, domain: &str, key: &DkimKey, retired: bool) -> Finding {
    let name = dkim_name(&key.selector, domain);
    let record = format!(
        "DKIM {}{}",
        key.selector,
        if retired { " (retired)" } else { "" }
    );
    let expected = key.dns_value();
    let publish = format!("publish the TXT record `{expected}` at {name}");
    let texts = match txt(resolver, &name).await {
        Ok(texts) => texts,
        Err(failure) => return lookup_failed(record, &name, &failure, &publish),
    };
    let wanted_p = key.public_key_base64.as_str();
    let wanted_k = key.algorithm.dns_name();
    let matching = texts.iter().any(|text| {
        let p = tag(text, "p").map(|p| strip_blanks(&p)).unwrap_or_default();
        let k = tag(text, "k").unwrap_or_else(|| "rsa".into());
        p == wanted_p && k.eq_ignore_ascii_case(wanted_k)
    });
    if matching {
        let message = if retired {
            format!("the retired key is still published at {name}; delete it once mail signed with it has been delivered, then tell campusmail")
        } else {
            format!("the key is published at {name}")
        };
        return Finding {
            ok: true,
            record,
            message,
        };
    }
    let message = if texts.is_empty() {
        format!("nothing is published at {name}, so other servers cannot check these signatures: {publish}")
    } else {
        format!("the record at {name} holds a different key (perhaps an old one, or cut short by the DNS panel): {publish}")
    };
    Finding {
        ok: false,
        record,
        message,
    }
}

async fn check_dmarc(resolver: &DnsResolver, domain: &str) -> Finding {
    let name = format!("_dmarc.{domain}");
    let record = format!("DMARC {domain}");
    let expected = expected_dmarc(domain);
    let publish = format!("publish the TXT record `{expected}` at {name}");
    let texts = match txt(resolver, &name).await {
        Ok(texts) => texts,
        Err(failure) => return lookup_failed(record, &name, &failure, &publish),
    };
    let Some(found) = texts
        .iter()
        .find(|t| strip_blanks(t).to_ascii_lowercase().starts_with("v=dmarc1"))
    else {
        return Finding {
            ok: false,
            record,
            message: format!("{domain} has no DMARC record, so anyone can put {domain} in the From line unnoticed: {publish}"),
        };
    };
    match tag(found, "p").map(|p| p.to_ascii_lowercase()).as_deref() {
        Some("quarantine") => Finding {
            ok: true,
            record,
            message: format!("DMARC asks others to quarantine forged mail from {domain}; change p=quarantine to p=reject once the reports show all your mail passes"),
        },
        Some("reject") => Finding {
            ok: true,
            record,
            message: format!("DMARC asks others to reject forged mail from {domain}"),
        },
        Some("none") => Finding {
            ok: false,
            record,
            message: format!("the DMARC record `{found}` only monitors (p=none): forged mail from {domain} is still delivered; {publish}"),
        },
        _ => Finding {
            ok: false,
            record,
            message: format!("the DMARC record `{found}` has no valid p= tag: {publish}"),
        },
    }
}

/// The TXT strings at `name`, each record's strings joined; none (NXDOMAIN
/// or no TXT) is an empty list.
async fn txt(resolver: &DnsResolver, name: &str) -> Result<Vec<String>, DnsFailure> {
    let verifier = resolver.mail_authenticator();
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let lookup = async move {
        match verifier.resolver().txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    mail_auth::hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(DnsFailure::Temporary(e.to_string())),
        }
    };
    resolver.run_within(LOOKUP_LIMIT, lookup).await?
}

fn lookup_failed(record: String, name: &str, failure: &DnsFailure, publish: &str) -> Finding {
    let message = match failure {
        DnsFailure::NoSuchDomain => format!("{name} does not exist in DNS: {publish}"),
        DnsFailure::Temporary(why) => {
            format!("could not look up {name} ({why}); check this server's DNS and try again")
        }
    };
    Finding {
        ok: false,
        record,
        message,
    }
}

fn expected_spf(mail_host: &str) -> String {
    format!("v=spf1 mx a:{mail_host} -all")
}

fn expected_dmarc(domain: &str) -> String {
    format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}")
}

fn dkim_name(selector: &str, domain: &str) -> String {
    format!("{selector}._domainkey.{domain}")
}

fn plain(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn strip_blanks(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect()
}

/// Whether two TXT texts say the same, ignoring whitespace runs and quotes.
fn same_text(a: &str, b: &str, ignore_case: bool) -> bool {
    let words = |t: &str| -> Vec<String> {
        t.replace('"', " ")
            .split_whitespace()
            .map(|w| {
                if ignore_case {
                    w.to_ascii_lowercase()
                } else {
                    w.to_string()
                }
            })
            .collect()
    };
    words(a) == words(b)
}

/// The value of tag `name` in a `tag=value; tag=value` record (RFC 6376
/// §3.2), whitespace around it removed.
fn tag(text: &str, name: &str) -> Option<String> {
    text.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

#[cfg(test)]
#[path = "dns_records_tests.rs"]
mod tests;
