//! Remote delivery: from "recipients at this domain" to an SMTP session with
//! the right server, within the lane's per-destination limit.
//!
//! Owns: the routing decision (per-domain transport, relay host, or MX
//! lookup, in that order), the per-destination connection limits of each
//! lane, and a small pool of idle connections so several messages to the
//! same server reuse one session.
//!
//! Invariants:
//! - A lane's connections to one destination never exceed its
//!   `*_per_destination` limit, and the lanes' limits are separate (R4).
//! - MX hosts are tried in preference order; a host that cannot be reached
//!   passes the recipients to the next one (RFC 5321 §5.1). A server that
//!   answered decides: its replies are final for this attempt.
//! - Opportunistic TLS (RFC 3207, RFC 7435): STARTTLS whenever offered; if
//!   the handshake fails, the same server is tried once in plain text.
//!
//! Reads untrusted input: DNS answers and remote replies (parsed in
//! `dns`, `mx` and `smtp_client`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smol::lock::{Semaphore, SemaphoreGuardArc};

use super::dns::{DnsFailure, DnsResolver};
use super::mx::{self, DeliveryTarget, RoutePlan};
use super::smtp_client::{ClientTimeouts, RecipientOutcome, SessionFailure, SmtpClient, TlsPolicy};
use super::DeliveryOutcome;
use crate::config::{parse_host_port, Config};
use crate::engine::queue::QueueLane;

/// How long an idle connection stays in the pool.
const IDLE_REUSE: Duration = Duration::from_secs(20);

pub struct RemoteDelivery {
    config: Arc<Config>,
    resolver: DnsResolver,
    limits: Mutex<HashMap<(QueueLane, String), Arc<Semaphore>>>,
    idle: Mutex<HashMap<SocketAddr, Vec<(SmtpClient, Instant)>>>,
}

/// A session with one destination for the recipients of one domain.
pub struct RemoteSession<'a> {
    owner: &'a RemoteDelivery,
    targets: Vec<DeliveryTarget>,
    client: Option<(SocketAddr, String, SmtpClient)>,
    last_error: String,
    _permit: SemaphoreGuardArc,
}

impl RemoteDelivery {
    pub fn new(config: Arc<Config>, resolver: DnsResolver) -> RemoteDelivery {
        RemoteDelivery {
            config,
            resolver,
            limits: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
        }
    }

    fn timeouts(&self) -> ClientTimeouts {
        let q = &self.config.queue;
        // One admin setting for every reply; the final dot may take twice
        // as long (RFC 5321 §4.5.3.2.6 allows the server 10 minutes).
        let reply = q.command_timeout.0;
        ClientTimeouts {
            connect: q.connect_timeout.0,
            greeting: reply,
            command: reply,
            data_init: reply,
            data_block: reply,
            data_end: reply * 2,
        }
    }

    /// The configured destination for `domain`, if routing names one.
    fn configured_destination(&self, domain: &str) -> Option<(String, u16)> {
        let routing = &self.config.routing;
        routing
            .transports
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .and_then(|(_, target)| parse_host_port(target))
            .or_else(|| {
                (!routing.relay_host.is_empty())
                    .then(|| parse_host_port(&routing.relay_host))
                    .flatten()
            })
    }

    async fn plan(&self, domain: &str) -> Result<Vec<DeliveryTarget>, DeliveryOutcome> {
        let plan = match self.configured_destination(domain) {
            Some((host, port)) => match host.parse::<IpAddr>() {
                Ok(ip) => Ok(RoutePlan::Targets(vec![DeliveryTarget {
                    host: host.clone(),
                    addrs: vec![SocketAddr::new(ip, port)],
                }])),
                Err(_) => self.resolver.ips(&host).await.map(|ips| {
                    RoutePlan::Targets(vec![DeliveryTarget {
                        addrs: ips
                            .into_iter()
                            .map(|ip| SocketAddr::new(ip, port))
                            .collect(),
                        host,
                    }])
                }),
            },
            None => mx::plan(&self.resolver, domain, self.config.routing.mx_port).await,
        };
        match plan {
            Ok(RoutePlan::Targets(targets)) if !targets.iter().all(|t| t.addrs.is_empty()) => {
                Ok(targets)
            }
            Ok(RoutePlan::Targets(_)) => Err(DeliveryOutcome::Deferred(format!(
                "4.4.4 no address found for the mail servers of {domain}"
            ))),
            Ok(RoutePlan::NullMx) => Err(DeliveryOutcome::Failed(format!(
                "556 5.1.10 {domain} accepts no mail (null MX, RFC 7505)"
            ))),
            Err(DnsFailure::NoSuchDomain) => Err(DeliveryOutcome::Failed(format!(
                "550 5.1.2 the domain {domain} does not exist"
            ))),
            Err(DnsFailure::Temporary(e)) => Err(DeliveryOutcome::Deferred(format!(
                "4.4.3 DNS lookup for {domain} failed: {e}"
            ))),
        }
    }

    fn limit(&self, lane: QueueLane, key: &str) -> Arc<Semaphore> {
        let per_destination = match lane {
            QueueLane::Normal => self.config.queue.normal_per_destination,
            QueueLane::Bulk => self.config.queue.bulk_per_destination,
        };
        let mut limits = match self.limits.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        limits
            .entry((lane, key.to_string()))
            .or_insert_with(|| Arc::new(Semaphore::new(per_destination)))
            .clone()
    }

    /// Routes `domain` and waits for a connection slot of `lane`; `Err` is
    /// the outcome for every recipient of the domain when it cannot be routed.
    pub async fn begin(
        &self,
        lane: QueueLane,
        domain: &str,
    ) -> Result<RemoteSession<'_>, DeliveryOutcome> {
        let targets = self.plan(domain).await?;
        let key = targets
            .first()
            .map(|t| t.host.clone())
            .unwrap_or_else(|| domain.to_string());
        let permit = self.limit(lane, &key).acquire_arc().await;
        Ok(RemoteSession {
            owner: self,
            targets,
            client: None,
            last_error: String::new(),
            _permit: permit,
        })
    }

    fn take_idle(&self, addr: SocketAddr) -> Option<SmtpClient> {
        let mut idle = match self.idle.lock() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        let list = idle.get_mut(&addr)?;
        while let Some((client, since)) = list.pop() {
            if since.elapsed() < IDLE_REUSE && client.is_usable() {
                return Some(client);
            }
        }
        None
    }

    fn put_idle(&self, addr: SocketAddr, client: SmtpClient) {
        let mut idle = match self.idle.lock() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        // Forget connections idle too long (dropping one closes it).
        for list in idle.values_mut() {
            list.retain(|(_, since)| since.elapsed() < IDLE_REUSE);
        }
        idle.retain(|_, list| !list.is_empty());
        idle.entry(addr).or_default().push((client, Instant::now()));
    }

    /// A fresh session to `addr`: opportunistic TLS, then plain text if the
    /// TLS handshake itself failed.
    async fn connect(&self, addr: SocketAddr, host: &str) -> Result<SmtpClient, SessionFailure> {
        let hostname = &self.config.node.hostname;
        match SmtpClient::connect(
            addr,
            host,
            hostname,
            TlsPolicy::Opportunistic,
            self.timeouts(),
        )
        .await
        {
            Err(SessionFailure::Temporary(e)) if e.contains("TLS") => {
                tracing::warn!(server = %host, %addr, error = %e, "TLS failed; retrying in plain text");
                SmtpClient::connect(addr, host, hostname, TlsPolicy::Disabled, self.timeouts())
                    .await
            }
            other => other,
        }
    }
}

impl RemoteSession<'_> {
    /// The server answering, for DSNs ("dns; mx.example.org").
    pub fn remote_mta(&self) -> Option<String> {
        self.client.as_ref().map(|(_, host, _)| host.clone())
    }

    /// Finds a server that answers, in preference order.
    async fn ensure_client(&mut self) -> bool {
        if self.client.is_some() {
            return true;
        }
        for target in &self.targets {
            for &addr in &target.addrs {
                if let Some(client) = self.owner.take_idle(addr) {
                    self.client = Some((addr, target.host.clone(), client));
                    return true;
                }
                match self.owner.connect(addr, &target.host).await {
                    Ok(client) => {
                        tracing::info!(server = %target.host, %addr, tls = client.is_tls(),
                            "connected to a mail server");
                        self.client = Some((addr, target.host.clone(), client));
                        return true;
                    }
                    Err(SessionFailure::Temporary(e)) | Err(SessionFailure::Permanent(e)) => {
                        tracing::warn!(server = %target.host, %addr, error = %e, "cannot use this mail server");
                        self.last_error = format!("{} ({addr}): {e}", target.host);
                    }
                }
            }
        }
        false
    }

    /// One transaction for `recipients`; one outcome each.
    pub async fn send(
        &mut self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
        smtputf8: bool,
    ) -> Vec<DeliveryOutcome> {
        if !self.ensure_client().await {
            let reason = format!("4.4.1 no mail server could be reached: {}", self.last_error);
            return vec![DeliveryOutcome::Deferred(reason); recipients.len()];
        }
        let Some((addr, host, mut client)) = self.client.take() else {
            return vec![DeliveryOutcome::Deferred("4.4.1 no connection".into()); recipients.len()];
        };
        match client.send(sender, recipients, message, smtputf8).await {
            Ok(outcomes) => {
                self.client = Some((addr, host.clone(), client));
                outcomes
                    .into_iter()
                    .map(|o| match o {
                        RecipientOutcome::Delivered(_) => DeliveryOutcome::Delivered,
                        RecipientOutcome::Temporary(r) => DeliveryOutcome::Deferred(r),
                        RecipientOutcome::Permanent(r) => DeliveryOutcome::Failed(r),
                    })
                    .collect()
            }
            // A MAIL FROM refusal leaves the session usable; anything else
            // drops it and the next chunk opens a new one.
            Err(failure) => {
                if client.is_usable() {
                    self.client = Some((addr, host, client));
                }
                let outcome = match failure {
                    SessionFailure::Temporary(e) => DeliveryOutcome::Deferred(e),
                    SessionFailure::Permanent(e) => DeliveryOutcome::Failed(e),
                };
                vec![outcome; recipients.len()]
            }
        }
    }

    /// Returns a healthy connection to the pool for the next message.
    pub async fn finish(mut self) {
        if let Some((addr, _, client)) = self.client.take() {
            if client.is_usable() {
                self.owner.put_idle(addr, client);
            }
        }
    }
}
