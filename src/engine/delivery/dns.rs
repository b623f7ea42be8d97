//! DNS lookups for remote delivery (MX, A, AAAA), callable from smol tasks.
//!
//! hickory-resolver runs on tokio while the engine runs on smol. This module
//! settles that once (DESIGN.md, "known tensions"): it owns one small
//! current-thread tokio runtime driven by a dedicated thread
//! (`campusmail-dns`). A lookup is spawned onto that runtime and its result
//! comes back through a smol channel, so callers simply `.await` it from any
//! executor. When the last `DnsResolver` clone is dropped, the thread's
//! shutdown signal closes, the runtime ends and the thread exits.
//!
//! `auth` (SPF, DKIM, DMARC through mail-auth) shares the same resolver:
//! `mail_authenticator` wraps it and `run_within` runs mail-auth's futures on
//! the runtime, so mail-auth's tokio dependency stays behind this module too.
//!
//! Owns: the tokio runtime and its thread, and hickory's in-memory cache.
//!
//! Invariants:
//! - Nothing outside this module knows about tokio.
//! - Names are looked up as absolute names (a trailing dot is added), so the
//!   search list of /etc/resolv.conf never turns `example.org` into
//!   `example.org.campus.test`; /etc/hosts is never consulted: mail routing
//!   follows DNS only.
//! - Every lookup ends: hickory's per-query timeout and attempts bound it,
//!   and an outer deadline bounds it again.
//! - NXDOMAIN is the only permanent failure; everything that might heal
//!   (SERVFAIL, REFUSED, timeouts, unreachable servers) is temporary.
//!
//! Reads untrusted input: yes, DNS answers (parsed by hickory-proto).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

/// Per-query timeout: short, a mail queue retries later anyway.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const QUERY_ATTEMPTS: usize = 2;

/// The resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot read the system DNS configuration (/etc/resolv.conf): {0}")]
    SystemConfig(String),
    #[error("cannot start the DNS resolver: {0}")]
    Start(String),
}

/// Why a lookup gave no answer; data for the queue, which defers or bounces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsFailure {
    /// NXDOMAIN: the name does not exist. Permanent.
    #[error("no such domain")]
    NoSuchDomain,
    /// SERVFAIL, REFUSED, timeouts, network errors: try again later.
    #[error("temporary DNS failure: {0}")]
    Temporary(String),
}

/// One MX record (RFC 1035 §3.3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    pub preference: u16,
    /// The exchange host, without a trailing dot; empty for the root (".",
    /// the null MX of RFC 7505).
    pub exchange: String,
}

/// A DNS resolver usable from smol tasks; cheap to clone.
#[derive(Clone)]
pub struct DnsResolver {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: TokioResolver,
    runtime: tokio::runtime::Handle,
    /// Longest a lookup may take, whatever hickory does.
    deadline: Duration,
    /// Dropping this (with the last clone) ends the runtime's thread.
    _shutdown: smol::channel::Sender<()>,
}

impl DnsResolver {
    /// `nameservers` empty → the system configuration (/etc/resolv.conf);
    /// else exactly these servers, over UDP and TCP.
    pub fn new(nameservers: &[SocketAddr]) -> Result<DnsResolver, DnsError> {
        DnsResolver::with_timeout(nameservers, QUERY_TIMEOUT, QUERY_ATTEMPTS)
    }

    /// Like `new` with a chosen per-query timeout and number of attempts
    /// (tests use short ones).
    pub fn with_timeout(
        nameservers: &[SocketAddr],
        timeout: Duration,
        attempts: usize,
    ) -> Result<DnsResolver, DnsError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DnsError::Start(e.to_string()))?;
        let provider = TokioRuntimeProvider::default();
        // hickory may spawn background work while building: do it inside
        // the runtime's context.
        let resolver = {
            let _context = runtime.enter();
            let mut builder = if nameservers.is_empty() {
                TokioResolver::builder(provider)
                    .map_err(|e| DnsError::SystemConfig(e.to_string()))?
            } else {
                let servers = nameservers.iter().map(|addr| {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for connection in &mut server.connections {
                        connection.port = addr.port();
                    }
                    server
                });
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers.collect()),
                    provider,
                )
            };
            let options: &mut ResolverOpts = builder.options_mut();
            options.timeout = timeout;
            options.attempts = attempts.max(1);
            options.use_hosts_file = ResolveHosts::Never;
            // Both address families, IPv4 first: most mail still flows
            // over IPv4 and not every campus network routes IPv6.
            options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
            builder
                .build()
                .map_err(|e| DnsError::Start(e.to_string()))?
        };
        let handle = runtime.handle().clone();
        let (shutdown, closed) = smol::channel::bounded::<()>(1);
        std::thread::Builder::new()
            .name("campusmail-dns".into())
            .spawn(move || {
                // Drives every spawned lookup until the last resolver clone
                // is dropped and the channel closes; dropping the runtime
                // then cancels whatever is still running.
                runtime.block_on(async move {
                    let _ = closed.recv().await;
                });
            })
            .map_err(|e| DnsError::Start(e.to_string()))?;
        let attempts = u32::try_from(attempts.max(1)).unwrap_or(u32::MAX);
        Ok(DnsResolver {
            inner: Arc::new(Inner {
                resolver,
                runtime: handle,
                deadline: timeout.saturating_mul(attempts.saturating_add(1)) + timeout,
                _shutdown: shutdown,
            }),
        })
    }

    /// The MX records of `domain`. No MX records (the name exists but has
    /// none) is `Ok(vec![])`.
    pub async fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, DnsFailure> {
        let name = absolute(domain)?;
        let resolver = self.inner.resolver.clone();
        let lookup = self
            .run(async move { resolver.mx_lookup(name).await })
            .await?;
        let lookup = match lookup {
            Ok(lookup) => lookup,
            Err(e) => return no_records_or_failure(e),
        };
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some(MxRecord {
                    preference: mx.preference,
                    exchange: host_name(&mx.exchange.to_ascii()),
                }),
                _ => None,
            })
            .collect())
    }

    /// The addresses (A and AAAA, IPv4 first) of `host`; none is `Ok(vec![])`.
    /// An address literal (`192.0.2.1`, `[2001:db8::1]`) is its own answer.
    pub async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        if let Ok(ip) = literal.unwrap_or(host).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = absolute(host)?;
        let resolver = self.inner.resolver.clone();
        match self
            .run(async move { resolver.lookup_ip(name).await })
            .await?
        {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) => no_records_or_failure(e),
        }
    }

    /// A `mail_auth::MessageAuthenticator` (SPF, DKIM, DMARC, ARC) sharing
    /// this resolver: the same nameservers, options and cache. Its lookups
    /// need this module's runtime, so every future using it must be run
    /// through [`DnsResolver::run_within`].
    pub fn mail_authenticator(&self) -> mail_auth::MessageAuthenticator {
        mail_auth::MessageAuthenticator(self.inner.resolver.clone())
    }

    /// Runs `work` (a future doing several lookups, e.g. a whole SPF
    /// evaluation) on the DNS runtime and waits for it from any executor.
    /// It is stopped after `limit`, or when the caller drops the returned
    /// future; both give `DnsFailure::Temporary`.
    pub async fn run_within<T: Send + 'static>(
        &self,
        limit: Duration,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, DnsFailure> {
        self.run_until(limit, work).await
    }

    /// Runs `lookup` on the DNS runtime and waits for it from any executor.
    async fn run<T: Send + 'static>(
        &self,
        lookup: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, DnsFailure> {
        self.run_until(self.inner.deadline, lookup).await
    }

    async fn run_until<T: Send + 'static>(
        &self,
        deadline: Duration,
        lookup: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, DnsFailure> {
        let (tx, rx) = smol::channel::bounded(1);
        let task = self.inner.runtime.spawn(async move {
            let result = tokio::time::timeout(deadline, lookup).await;
            let _ = tx.send(result).await;
        });
        // If the caller gives up (its future is dropped), stop the lookup.
        let _abort = AbortOnDrop(task);
        match rx.recv().await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_elapsed)) => Err(DnsFailure::Temporary("DNS lookup timed out".into())),
            Err(_) => Err(DnsFailure::Temporary("the DNS resolver stopped".into())),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `name` as an absolute DNS name (trailing dot), refusing what is not a
/// plausible host name before it reaches the wire.
fn absolute(name: &str) -> Result<String, DnsFailure> {
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(DnsFailure::NoSuchDomain);
    }
    Ok(format!("{name}."))
}

/// A name as hickory prints it, without the trailing dot.
fn host_name(ascii: &str) -> String {
    ascii.strip_suffix('.').unwrap_or(ascii).to_string()
}

/// NOERROR with no records is an empty answer; NXDOMAIN is permanent;
/// anything else is temporary.
fn no_records_or_failure<T>(error: NetError) -> Result<Vec<T>, DnsFailure> {
    match &error {
        NetError::Dns(HickoryDnsError::NoRecordsFound(no_records)) => {
            if no_records.response_code == ResponseCode::NXDomain {
                Err(DnsFailure::NoSuchDomain)
            } else {
                Ok(Vec::new())
            }
        }
        _ => Err(DnsFailure::Temporary(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::delivery::dns_test_server::{TestDns, Zone};

    fn resolver(dns: &TestDns) -> DnsResolver {
        DnsResolver::with_timeout(&[dns.addr], Duration::from_secs(2), 1).unwrap()
    }

    fn zone() -> Zone {
        Zone::default()
            .mx("campus.test", 10, "mx1.campus.test")
            .mx("campus.test", 20, "mx2.campus.test")
            .ip("mx1.campus.test", "192.0.2.1")
            .ip("mx1.campus.test", "2001:db8::1")
            .exists("nomx.test")
            .mx("null.test", 0, ".")
            .servfail("broken.test")
    }

    #[test]
    fn looks_up_mx_records() {
        let dns = TestDns::start(zone());
        let resolver = resolver(&dns);
        let mut records = smol::block_on(resolver.mx("campus.test")).unwrap();
        records.sort_by_key(|r| r.preference);
        assert_eq!(
            records,
            [
                MxRecord {
                    preference: 10,
                    exchange: "mx1.campus.test".into()
                },
                MxRecord {
                    preference: 20,
                    exchange: "mx2.campus.test".into()
                },
            ]
        );
        // A trailing dot in the query changes nothing.
        assert_eq!(
            smol::block_on(resolver.mx("campus.test.")).unwrap().len(),
            2
        );
    }

    #[test]
    fn null_mx_has_an_empty_exchange() {
        let dns = TestDns::start(zone());
        let records = smol::block_on(resolver(&dns).mx("null.test")).unwrap();
        assert_eq!(
            records,
            [MxRecord {
                preference: 0,
                exchange: String::new()
            }]
        );
    }

    #[test]
    fn looks_up_both_address_families_ipv4_first() {
        let dns = TestDns::start(zone());
        let ips = smol::block_on(resolver(&dns).ips("mx1.campus.test")).unwrap();
        assert_eq!(
            ips,
            [
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse::<IpAddr>().unwrap()
            ]
        );
    }

    #[test]
    fn no_records_nxdomain_and_servfail_are_told_apart() {
        let dns = TestDns::start(zone());
        let resolver = resolver(&dns);
        assert_eq!(smol::block_on(resolver.mx("nomx.test")), Ok(vec![]));
        assert_eq!(smol::block_on(resolver.ips("nomx.test")), Ok(vec![]));
        assert_eq!(
            smol::block_on(resolver.mx("nowhere.test")),
            Err(DnsFailure::NoSuchDomain)
        );
        assert_eq!(
            smol::block_on(resolver.ips("nowhere.test")),
            Err(DnsFailure::NoSuchDomain)
        );
        assert!(matches!(
            smol::block_on(resolver.mx("broken.test")),
            Err(DnsFailure::Temporary(_))
        ));
    }

    #[test]
    fn a_silent_nameserver_is_a_temporary_failure() {
        // A bound UDP socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let resolver = DnsResolver::with_timeout(
            &[silent.local_addr().unwrap()],
            Duration::from_millis(200),
            1,
        )
        .unwrap();
        assert!(matches!(
            smol::block_on(resolver.mx("campus.test")),
            Err(DnsFailure::Temporary(_))
        ));
    }

    #[test]
    fn usable_from_many_tasks_and_after_clones_drop() {
        let dns = TestDns::start(zone());
        let resolver = resolver(&dns);
        let results = smol::block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let r = resolver.clone();
                    smol::spawn(async move { r.ips("mx1.campus.test").await })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await);
            }
            results
        });
        assert!(results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|ips| ips.len() == 2)));
        drop(resolver);
    }

    #[test]
    fn address_literals_need_no_lookup() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let resolver = DnsResolver::new(&[silent.local_addr().unwrap()]).unwrap();
        assert_eq!(
            smol::block_on(resolver.ips("192.0.2.7")),
            Ok(vec!["192.0.2.7".parse::<IpAddr>().unwrap()])
        );
        assert_eq!(
            smol::block_on(resolver.ips("[2001:db8::7]")),
            Ok(vec!["2001:db8::7".parse::<IpAddr>().unwrap()])
        );
    }

    #[test]
    fn names_that_cannot_be_names_fail_without_a_query() {
        assert_eq!(absolute(""), Err(DnsFailure::NoSuchDomain));
        assert_eq!(absolute("a b.test"), Err(DnsFailure::NoSuchDomain));
        assert_eq!(absolute("a.test"), Ok("a.test.".into()));
        assert_eq!(absolute("a.test."), Ok("a.test.".into()));
    }
}
