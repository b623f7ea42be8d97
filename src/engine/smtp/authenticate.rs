//! Mail authentication on the way into the queue (R7): the verdict on mail
//! from other servers, and the DKIM signature on mail from our users.
//!
//! Owns: the decision, per accepted message, of which trust and control
//! fields it carries when it enters the queue.
//!
//! Invariants:
//! - Every accepted message first loses any `Authentication-Results:` field
//!   with our authserv-id (RFC 8601 §5) and any `X-Campusmail-Deliver-To:`
//!   field: only this appliance sets them, below.
//! - On the MX port, unless the client is a trusted relay, SPF, DKIM, DMARC
//!   (and ARC) are checked and one `Authentication-Results:` field is added.
//!   A failed DMARC check with p=reject is refused with 550 5.7.1 and
//!   p=quarantine files the message into Junk, unless `[auth]` says to only
//!   monitor that domain.
//! - Mail from logged-in users with a From: domain we hold keys for is
//!   DKIM-signed (RSA and Ed25519) before it is queued.
//!
//! Reads untrusted input: yes, whole messages (the checks themselves live in
//! `crate::auth`, which never panics).

use std::borrow::Cow;

use crate::auth::{claims_authserv_id, InboundRequest, PolicyAction};
use crate::mailbox::folders::{DELIVER_TO, JUNK, LANE};
use crate::mime::header_section::remove_fields;

use super::reply::Reply;
use super::session::{Helo, Session};

impl Session {
    /// The trust and control fields to put above `body`, or the refusal.
    pub(super) async fn authenticate(
        &self,
        helo: &Helo,
        sender: &str,
        body: &mut Vec<u8>,
    ) -> Result<String, Reply> {
        let hostname = self.hostname().to_string();
        // One pass; the message is copied only when something is removed.
        let cleaned = match remove_fields(body, |name, field| {
            name.eq_ignore_ascii_case(DELIVER_TO)
                || name.eq_ignore_ascii_case(LANE)
                || claims_authserv_id(field, &hostname)
        }) {
            Cow::Owned(kept) => Some(kept),
            Cow::Borrowed(_) => None,
        };
        if let Some(kept) = cleaned {
            *body = kept;
        }
        let auth = &self.ctx.config.auth;
        let mut fields = String::new();

        if self.login.is_some() {
            if auth.dkim_sign {
                if let Some(signature) = self.ctx.signing.sign(body) {
                    fields.push_str(&signature);
                }
            }
            return Ok(fields);
        }
        let checks_apply = auth.verify_inbound && !auth.is_trusted_relay(self.peer.ip());
        let Some(authenticator) = self.ctx.authenticator.as_ref().filter(|_| checks_apply) else {
            return Ok(fields);
        };
        let verdict = authenticator
            .verify(&InboundRequest {
                client_ip: self.peer.ip(),
                helo: &helo.name,
                mail_from: sender,
                message: body,
            })
            .await;
        let monitored = verdict.from_domain.as_deref().is_some_and(|d| {
            auth.dmarc_monitor_only
                .iter()
                .any(|m| m.eq_ignore_ascii_case(d))
        });
        let enforce = auth.enforce_dmarc && !monitored;
        tracing::info!(peer = %self.peer, from_domain = ?verdict.from_domain,
            verdict = %verdict.summary, enforce, "mail authentication");
        match verdict.action {
            PolicyAction::Reject if enforce => {
                return Err(Reply::new(
                    550,
                    "5.7.1",
                    format!(
                        "Message rejected: it fails the DMARC policy of {} ({})",
                        verdict
                            .from_domain
                            .as_deref()
                            .unwrap_or("the sender's domain"),
                        verdict.summary
                    ),
                ));
            }
            PolicyAction::Quarantine if enforce => {
                fields.push_str(&format!("{DELIVER_TO}: {JUNK}\r\n"));
            }
            _ => {}
        }
        fields.push_str(&verdict.header);
        Ok(fields)
    }
}
