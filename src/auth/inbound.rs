//! Authentication of received mail: SPF (RFC 7208), DKIM (RFC 6376, every
//! signature), ARC (RFC 8617, when an ARC-Seal is present) and DMARC
//! (RFC 7489 / DMARCbis as mail-auth implements it), summed up as one
//! `InboundVerdict`: an `Authentication-Results:` header field (RFC 8601),
//! the DMARC policy action and a line for the log.
//!
//! SPF checks the MAIL FROM identity, or the HELO identity when MAIL FROM is
//! null (RFC 7208 §2.4); that identity's domain is also the one DMARC aligns
//! SPF with. DMARC's policy applies only when DMARC fails: `p=reject` →
//! `Reject`, `p=quarantine` → `Quarantine` (mail-auth already picks `sp=`/
//! `np=` for subdomains and lowers the policy one step for `t=y`; DMARCbis
//! dropped `pct=`, which mail-auth ignores, so we do too).
//!
//! All DNS goes through `engine::delivery::dns` (mail-auth's futures run on
//! its runtime through `DnsResolver::run_within`), in two bounded stages:
//! SPF (20 s, RFC 7208 §4.6.4), then DKIM + ARC + DMARC (30 s). A stage that
//! runs out of time, or whose DNS fails, yields `temperror` results.
//!
//! Owns: nothing but a handle on the resolver.
//!
//! Invariants: `verify` never panics and never returns an error; a verdict
//! is data. The header field it produces is folded with CRLF + TAB only:
//! whatever a peer put in HELO, MAIL FROM or a signature cannot add lines.
//!
//! Reads untrusted input: yes (the message, the envelope, DNS answers); all
//! parsed by mail-auth.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput,
    DmarcResult, MessageAuthenticator, SpfOutput, SpfResult,
};

use super::AuthError;
use crate::engine::delivery::dns::DnsResolver;

pub use super::header_fields::{claims_authserv_id, strip_forged_results};

/// RFC 7208 §4.6.4: at least 20 seconds for one SPF evaluation.
const SPF_TIME_LIMIT: Duration = Duration::from_secs(20);
/// DKIM keys, ARC keys and DMARC records of one message.
const MESSAGE_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Verifies received mail; `Send + Sync`, shared as `Arc`.
pub struct Authenticator {
    dns: DnsResolver,
    verifier: MessageAuthenticator,
    authserv_id: Arc<str>,
}

/// What `Authenticator::verify` needs to know about one received message.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    pub client_ip: IpAddr,
    pub helo: &'a str,
    /// The reverse-path without angle brackets; "" for the null sender.
    pub mail_from: &'a str,
    /// The message as received (headers + body, CRLF).
    pub message: &'a [u8],
}

/// What to do with a message, from the DMARC policy of its From domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    Accept,
    /// Deliver to the Junk folder.
    Quarantine,
    /// Refuse at end of DATA (550 5.7.1).
    Reject,
}

/// The outcome of authenticating one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundVerdict {
    pub action: PolicyAction,
    /// One complete header field, folded, ending in CRLF:
    /// `Authentication-Results: <authserv-id>;\r\n\tspf=...;\r\n\tdkim=...`.
    pub header: String,
    /// One line for logs, e.g. "spf=pass dkim=fail dmarc=fail(p=reject)".
    pub summary: String,
    /// The RFC5322.From domain (lower case), when there is one.
    pub from_domain: Option<String>,
}

/// The SMTP envelope, owned so it can move onto the DNS runtime.
#[derive(Debug, Clone)]
struct Envelope {
    ip: IpAddr,
    helo: String,
    /// Without angle brackets; "" for the null sender.
    mail_from: String,
}

impl Envelope {
    /// The domain SPF checked: MAIL FROM's, or HELO's for the null sender.
    fn spf_domain(&self) -> &str {
        match self.mail_from.rsplit_once('@') {
            Some((_, domain)) if !self.mail_from.is_empty() => domain,
            _ => &self.helo,
        }
    }
}

impl Authenticator {
    /// `authserv_id` = our host name (RFC 8601 §2.5).
    pub fn new(resolver: &DnsResolver, authserv_id: &str) -> Result<Authenticator, AuthError> {
        let id = authserv_id.trim_end_matches('.');
        let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
        if id.is_empty() || id.len() > 253 || !id.bytes().all(plain) {
            return Err(AuthError::InvalidAuthservId(authserv_id.to_string()));
        }
        Ok(Authenticator {
            dns: resolver.clone(),
            verifier: resolver.mail_authenticator(),
            authserv_id: Arc::from(id.to_ascii_lowercase()),
        })
    }

    /// Our authserv-id (for `strip_forged_results`).
    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }

    /// SPF, DKIM, ARC and DMARC of one message. Never panics; DNS failures
    /// become temperror results, never an error.
    pub async fn verify(&self, req: &InboundRequest<'_>) -> InboundVerdict {
        let envelope = Envelope {
            ip: req.client_ip,
            helo: req.helo.trim().to_string(),
            mail_from: req
                .mail_from
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string(),
        };
        let spf = self.check_spf(&envelope).await;

        let message: Arc<[u8]> = Arc::from(req.message);
        let verifier = self.verifier.clone();
        let authserv_id = self.authserv_id.clone();
        let (stage_envelope, stage_spf) = (envelope.clone(), spf.clone());
        let stage = async move {
            judge_message(
                &verifier,
                &authserv_id,
                &stage_envelope,
                &stage_spf,
                &message,
            )
            .await
        };
        match self.dns.run_within(MESSAGE_TIME_LIMIT, stage).await {
            Ok(verdict) => verdict,
            Err(failure) => {
                // Out of time (or the resolver stopped): DKIM and DMARC are
                // temperror; the From domain is still worth knowing.
                let error =
                    mail_auth::Error::Dns(mail_auth::DnsError::Resolver(failure.to_string()));
                let from_domain = AuthenticatedMessage::parse(req.message)
                    .as_ref()
                    .and_then(from_domain);
                let dmarc = DmarcOutput::new(from_domain.clone().unwrap_or_default())
                    .with_dkim_result(DmarcResult::TempError(error.clone()))
                    .with_spf_result(DmarcResult::TempError(error.clone()));
                verdict(
                    &self.authserv_id,
                    &envelope,
                    &spf,
                    &[DkimOutput::temp_err(error)],
                    None,
                    &dmarc,
                    from_domain,
                )
            }
        }
    }

    /// SPF for the MAIL FROM identity, or HELO for the null sender.
    async fn check_spf(&self, envelope: &Envelope) -> SpfOutput {
        let verifier = self.verifier.clone();
        let authserv_id = self.authserv_id.clone();
        let (ip, helo, mail_from) = (
            envelope.ip,
            envelope.helo.clone(),
            envelope.mail_from.clone(),
        );
        let evaluation = async move {
            let params = if mail_from.is_empty() {
                SpfParameters::verify_ehlo(ip, &helo, &authserv_id)
            } else {
                SpfParameters::verify_mail_from(ip, &helo, &authserv_id, &mail_from)
            };
            verifier.verify_spf(params).await
        };
        match self.dns.run_within(SPF_TIME_LIMIT, evaluation).await {
            Ok(output) => output,
            Err(_) => {
                SpfOutput::new(envelope.spf_domain().to_string()).with_result(SpfResult::TempError)
            }
        }
    }
}

/// DKIM, ARC and DMARC of one message (runs on the DNS runtime).
async fn judge_message(
    verifier: &MessageAuthenticator,
    authserv_id: &str,
    envelope: &Envelope,
    spf: &SpfOutput,
    raw: &[u8],
) -> InboundVerdict {
    let Some(message) = AuthenticatedMessage::parse(raw) else {
        // No header fields at all: nothing to check beyond SPF.
        return verdict(
            authserv_id,
            envelope,
            spf,
            &[],
            None,
            &DmarcOutput::default(),
            None,
        );
    };
    let dkim = verifier.verify_dkim(&message).await;
    let arc = if message.as_headers.is_empty() {
        None
    } else {
        Some(verifier.verify_arc(&message).await)
    };
    let dmarc = verifier
        .verify_dmarc(DmarcParameters::new(
            &message,
            &dkim,
            envelope.spf_domain(),
            spf,
        ))
        .await;
    verdict(
        authserv_id,
        envelope,
        spf,
        &dkim,
        arc.as_ref(),
        &dmarc,
        from_domain(&message),
    )
}

/// The RFC5322.From domain (of the first address), lower case.
fn from_domain(message: &AuthenticatedMessage<'_>) -> Option<String> {
    message
        .from
        .iter()
        .find_map(|address| address.rsplit_once('@'))
        .map(|(_, domain)| domain.trim_end_matches('.').to_ascii_lowercase())
        .filter(|domain| !domain.is_empty())
}

/// Assembles the verdict: the action, the header field, the log line.
fn verdict(
    authserv_id: &str,
    envelope: &Envelope,
    spf: &SpfOutput,
    dkim: &[DkimOutput<'_>],
    arc: Option<&ArcOutput<'_>>,
    dmarc: &DmarcOutput,
    from_domain: Option<String>,
) -> InboundVerdict {
    let header_from = from_domain.as_deref().unwrap_or_default();
    // SPF and DKIM results after our authserv-id...
    let spf_dkim = AuthenticationResults::new(authserv_id);
    let spf_dkim = if envelope.mail_from.is_empty() {
        spf_dkim.with_spf_ehlo_result(spf, envelope.ip, &envelope.helo)
    } else {
        spf_dkim.with_spf_mailfrom_result(spf, envelope.ip, &envelope.mail_from, &envelope.helo)
    };
    let mut value = spf_dkim.with_dkim_results(dkim, header_from).to_string();
    if dkim.is_empty() {
        value.push_str(";\r\n\tdkim=none");
    }
    // ...then DMARC and ARC: a builder with an empty authserv-id displays
    // only its results, each starting with ";\r\n\t".
    let no_arc = ArcOutput::default();
    let dmarc_arc = AuthenticationResults::new("")
        .with_dmarc_result(dmarc)
        .with_arc_result(arc.unwrap_or(&no_arc), envelope.ip);
    value.push_str(&dmarc_arc.to_string());

    let dmarc_result = dmarc.result();
    let action = match (&dmarc_result, dmarc.policy()) {
        (DmarcResult::Fail(_), Policy::Reject) => PolicyAction::Reject,
        (DmarcResult::Fail(_), Policy::Quarantine) => PolicyAction::Quarantine,
        _ => PolicyAction::Accept,
    };

    let mut summary = format!(
        "spf={} dkim={} dmarc={}",
        spf_word(spf.result()),
        dkim_words(dkim),
        dmarc_word(&dmarc_result)
    );
    if matches!(dmarc_result, DmarcResult::Fail(_)) {
        summary.push_str(match dmarc.policy() {
            Policy::Reject => "(p=reject)",
            Policy::Quarantine => "(p=quarantine)",
            Policy::None | Policy::Unspecified => "(p=none)",
        });
    }
    if let Some(arc) = arc {
        summary.push_str(" arc=");
        summary.push_str(dkim_word(arc.result()));
    }

    InboundVerdict {
        action,
        header: format!("Authentication-Results: {}\r\n", only_folds(&value)),
        summary,
        from_domain,
    }
}

/// Keeps CRLF + WSP folds and turns any other CR or LF into a space, so the
/// value stays one header field whatever the peer sent.
fn only_folds(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    for (i, ch) in value.char_indices() {
        let fold = match ch {
            '\r' => {
                bytes.get(i + 1) == Some(&b'\n') && matches!(bytes.get(i + 2), Some(b' ' | b'\t'))
            }
            '\n' => {
                i > 0 && bytes[i - 1] == b'\r' && matches!(bytes.get(i + 1), Some(b' ' | b'\t'))
            }
            _ => true,
        };
        out.push(if fold { ch } else { ' ' });
    }
    out
}

fn spf_word(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_word(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// Every signature's result, in order, without repeats: "pass", "fail,pass".
fn dkim_words(dkim: &[DkimOutput<'_>]) -> String {
    let mut words: Vec<&str> = Vec::new();
    for output in dkim {
        let word = dkim_word(output.result());
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if words.is_empty() {
        "none".to_string()
    } else {
        words.join(",")
    }
}

fn dmarc_word(result: &DmarcResult) -> &'static str {
    match result {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
