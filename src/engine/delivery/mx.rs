//! Which hosts to try for a remote domain: the MX plan (RFC 5321 §5.1,
//! null MX of RFC 7505).
//!
//! Owns: nothing. `order_exchanges` is the pure rule (ordering, implicit
//! MX, null MX); `plan` adds the DNS lookups.
//!
//! Invariants:
//! - Hosts are tried in ascending preference; among equal preferences the
//!   order is random, spreading load as §5.1 asks.
//! - A domain whose only MX is "." accepts no mail (RFC 7505 §3): its
//!   recipients fail permanently with 5.1.10 (§4.2) and nobody is contacted.
//! - Every target in a plan has at least one address.
//!
//! Reads untrusted input: yes, DNS answers (through `dns`).

use std::collections::HashSet;
use std::net::SocketAddr;

use rand::seq::SliceRandom;
use rand::Rng;

use super::dns::{DnsFailure, DnsResolver, MxRecord};

/// One host to try, with its addresses in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTarget {
    /// The MX host name (or the domain itself for an implicit MX): the TLS
    /// server name and what logs and DSNs name.
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePlan {
    /// Hosts in the order to try them; never empty.
    Targets(Vec<DeliveryTarget>),
    /// The domain publishes a null MX: it accepts no mail (RFC 7505).
    NullMx,
}

/// What the MX records say, before any address lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeOrder {
    /// MX hosts in the order to try them.
    Hosts(Vec<String>),
    /// No MX records: the domain itself is the host (RFC 5321 §5.1).
    Implicit,
    /// Null MX (RFC 7505).
    NullMx,
}

/// The status and text for recipients at a null-MX domain (RFC 7505 §4.2).
pub const NULL_MX_REASON: &str =
    "5.1.10 the recipient's domain accepts no mail (null MX, RFC 7505)";

/// Orders MX records: ascending preference, random among equals, duplicates
/// dropped.
///
/// RFC 7505 §3 says a null MX is the domain's only MX record. One or more
/// records all naming "." are a null MX; should "." appear beside real hosts
/// (a broken zone), it is skipped and the real hosts are used.
pub fn order_exchanges(records: &[MxRecord], rng: &mut impl Rng) -> ExchangeOrder {
    if records.is_empty() {
        return ExchangeOrder::Implicit;
    }
    let mut real: Vec<&MxRecord> = records.iter().filter(|r| !is_root(&r.exchange)).collect();
    if real.is_empty() {
        return ExchangeOrder::NullMx;
    }
    // Shuffle first, then a stable sort by preference keeps the random
    // order within each preference.
    real.shuffle(rng);
    real.sort_by_key(|r| r.preference);
    let mut seen = HashSet::new();
    let hosts = real
        .into_iter()
        .map(|r| r.exchange.trim_end_matches('.').to_ascii_lowercase())
        .filter(|host| seen.insert(host.clone()))
        .collect();
    // TODO(rfc5321 §5.1): when our own host name is among the exchanges,
    // drop it and every host of equal or worse preference (mail loop guard).
    ExchangeOrder::Hosts(hosts)
}

fn is_root(exchange: &str) -> bool {
    exchange.is_empty() || exchange == "."
}

/// Works out where mail for `domain` goes, resolving each host's addresses
/// (connections go to `port`, 25 in production).
///
/// - MX lookup fails → that failure (NXDOMAIN permanent, others temporary).
/// - No MX → the domain's own A/AAAA (implicit MX); a domain that exists but
///   has no address either is `NoSuchDomain` (permanent, like Postfix's
///   "Host or domain name not found").
/// - MX hosts that do not resolve (or have no address) are skipped; if none
///   remains the failure is temporary (the zone may be fixed soon).
pub async fn plan(
    resolver: &DnsResolver,
    domain: &str,
    port: u16,
) -> Result<RoutePlan, DnsFailure> {
    let records = resolver.mx(domain).await?;
    let order = order_exchanges(&records, &mut rand::thread_rng());
    let hosts = match order {
        ExchangeOrder::NullMx => return Ok(RoutePlan::NullMx),
        ExchangeOrder::Implicit => {
            let addrs = addresses(resolver.ips(domain).await?, port);
            if addrs.is_empty() {
                return Err(DnsFailure::NoSuchDomain);
            }
            return Ok(RoutePlan::Targets(vec![DeliveryTarget {
                host: domain.trim_end_matches('.').to_ascii_lowercase(),
                addrs,
            }]));
        }
        ExchangeOrder::Hosts(hosts) => hosts,
    };
    let mut targets = Vec::with_capacity(hosts.len());
    let mut last_failure = None;
    for host in hosts {
        match resolver.ips(&host).await {
            Ok(ips) if !ips.is_empty() => targets.push(DeliveryTarget {
                addrs: addresses(ips, port),
                host,
            }),
            Ok(_) => {
                tracing::debug!(%domain, mx = %host, "MX host has no address; skipped");
                last_failure = Some(format!("MX host {host} has no address"));
            }
            Err(e) => {
                tracing::debug!(%domain, mx = %host, error = %e, "MX host does not resolve; skipped");
                last_failure = Some(format!("MX host {host}: {e}"));
            }
        }
    }
    if targets.is_empty() {
        return Err(DnsFailure::Temporary(
            last_failure.unwrap_or_else(|| format!("no MX host of {domain} resolves")),
        ));
    }
    Ok(RoutePlan::Targets(targets))
}

fn addresses(ips: Vec<std::net::IpAddr>, port: u16) -> Vec<SocketAddr> {
    let mut seen = HashSet::new();
    ips.into_iter()
        .filter(|ip| seen.insert(*ip))
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn mx(preference: u16, exchange: &str) -> MxRecord {
        MxRecord {
            preference,
            exchange: exchange.into(),
        }
    }

    fn hosts(order: ExchangeOrder) -> Vec<String> {
        match order {
            ExchangeOrder::Hosts(hosts) => hosts,
            other => panic!("expected hosts, got {other:?}"),
        }
    }

    #[test]
    fn orders_by_preference() {
        let records = [mx(30, "c.test"), mx(10, "a.test"), mx(20, "b.test")];
        let order = order_exchanges(&records, &mut StdRng::seed_from_u64(1));
        assert_eq!(hosts(order), ["a.test", "b.test", "c.test"]);
    }

    #[test]
    fn equal_preferences_come_in_random_order_but_stay_in_their_group() {
        let records = [
            mx(20, "late.test"),
            mx(10, "one.test"),
            mx(10, "two.test"),
            mx(10, "three.test"),
        ];
        let mut firsts = HashSet::new();
        for seed in 0..64 {
            let order = hosts(order_exchanges(&records, &mut StdRng::seed_from_u64(seed)));
            assert_eq!(order.len(), 4);
            assert_eq!(order[3], "late.test", "{order:?}");
            let mut group = order[..3].to_vec();
            group.sort();
            assert_eq!(group, ["one.test", "three.test", "two.test"]);
            firsts.insert(order[0].clone());
        }
        assert!(firsts.len() > 1, "the order among equals never changed");
    }

    #[test]
    fn no_records_is_an_implicit_mx() {
        assert_eq!(
            order_exchanges(&[], &mut StdRng::seed_from_u64(1)),
            ExchangeOrder::Implicit
        );
    }

    #[test]
    fn a_single_root_exchange_is_a_null_mx() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            order_exchanges(&[mx(0, "")], &mut rng),
            ExchangeOrder::NullMx
        );
        assert_eq!(
            order_exchanges(&[mx(0, ".")], &mut rng),
            ExchangeOrder::NullMx
        );
    }

    #[test]
    fn a_root_exchange_beside_real_hosts_is_skipped() {
        let records = [mx(0, ""), mx(10, "mx.test")];
        let order = order_exchanges(&records, &mut StdRng::seed_from_u64(1));
        assert_eq!(hosts(order), ["mx.test"]);
    }

    #[test]
    fn duplicate_hosts_are_tried_once_at_their_best_preference() {
        let records = [mx(20, "MX.test."), mx(10, "mx.test"), mx(15, "b.test")];
        let order = order_exchanges(&records, &mut StdRng::seed_from_u64(1));
        assert_eq!(hosts(order), ["mx.test", "b.test"]);
    }

    #[test]
    fn addresses_get_the_port_and_no_duplicates() {
        let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            addresses(vec![ip, ip], 2525),
            vec![SocketAddr::new(ip, 2525)]
        );
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::engine::delivery::dns_test_server::{TestDns, Zone};
    use std::time::Duration;

    fn plan_for(zone: Zone, domain: &str) -> Result<RoutePlan, DnsFailure> {
        let dns = TestDns::start(zone);
        let resolver = DnsResolver::with_timeout(&[dns.addr], Duration::from_secs(2), 1).unwrap();
        smol::block_on(plan(&resolver, domain, 2525))
    }

    fn addr(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 2525)
    }

    #[test]
    fn mx_hosts_in_preference_order_with_their_addresses() {
        let zone = Zone::default()
            .mx("campus.test", 20, "backup.campus.test")
            .mx("campus.test", 10, "mx.campus.test")
            .ip("mx.campus.test", "192.0.2.1")
            .ip("backup.campus.test", "192.0.2.2")
            .ip("backup.campus.test", "2001:db8::2");
        assert_eq!(
            plan_for(zone, "campus.test"),
            Ok(RoutePlan::Targets(vec![
                DeliveryTarget {
                    host: "mx.campus.test".into(),
                    addrs: vec![addr("192.0.2.1")],
                },
                DeliveryTarget {
                    host: "backup.campus.test".into(),
                    addrs: vec![addr("192.0.2.2"), addr("2001:db8::2")],
                },
            ]))
        );
    }

    #[test]
    fn no_mx_falls_back_to_the_domains_own_address() {
        let zone = Zone::default().ip("plain.test", "192.0.2.9");
        assert_eq!(
            plan_for(zone, "plain.test"),
            Ok(RoutePlan::Targets(vec![DeliveryTarget {
                host: "plain.test".into(),
                addrs: vec![addr("192.0.2.9")],
            }]))
        );
    }

    #[test]
    fn null_mx_nxdomain_and_dead_ends() {
        let zone = || {
            Zone::default()
                .mx("null.test", 0, ".")
                .exists("empty.test")
                .mx("dangling.test", 10, "gone.dangling.test")
                .mx("half.test", 10, "gone.half.test")
                .mx("half.test", 20, "ok.half.test")
                .ip("ok.half.test", "192.0.2.3")
        };
        assert_eq!(plan_for(zone(), "null.test"), Ok(RoutePlan::NullMx));
        assert_eq!(
            plan_for(zone(), "nowhere.test"),
            Err(DnsFailure::NoSuchDomain)
        );
        assert_eq!(
            plan_for(zone(), "empty.test"),
            Err(DnsFailure::NoSuchDomain)
        );
        assert!(matches!(
            plan_for(zone(), "dangling.test"),
            Err(DnsFailure::Temporary(_))
        ));
        assert_eq!(
            plan_for(zone(), "half.test"),
            Ok(RoutePlan::Targets(vec![DeliveryTarget {
                host: "ok.half.test".into(),
                addrs: vec![addr("192.0.2.3")],
            }]))
        );
    }
}
