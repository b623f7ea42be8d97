//! One mail transaction on an open session: MAIL FROM, RCPT TO for each
//! recipient, DATA (RFC 5321 §3.3), pipelined when the server offers it
//! (RFC 2920), with the checks that keep us from sending what the server
//! cannot take (SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531).
//!
//! Owns: nothing beyond the session it borrows.
//!
//! Invariants:
//! - One outcome per recipient, in order, or one `SessionFailure` for all.
//! - A transaction that will not deliver is always ended: a lone dot if the
//!   server already said 354, then RSET (RFC 5321 §4.1.1.5).
//! - No command line carries CR, LF or angle brackets from an address.
//!
//! Reads untrusted input: yes, the server's replies (through `wire`).

use super::super::wire::{dot_stuff, ServerReply};
use super::{RecipientOutcome, SessionFailure, SmtpClient};

/// RCPT commands sent in one pipelined group: a few KB, which fits any
/// socket buffer, so neither side blocks writing while the other does too
/// (RFC 2920 §3.1 warns about that deadlock).
const PIPELINE_GROUP: usize = 50;

impl SmtpClient {
    /// One transaction: MAIL, RCPT for each recipient, DATA; one outcome
    /// per recipient in order. `smtputf8` says the message needs SMTPUTF8
    /// (non-ASCII addresses or header fields).
    pub async fn send(
        &mut self,
        mail_from: &str,
        recipients: &[String],
        message: &[u8],
        smtputf8: bool,
    ) -> Result<Vec<RecipientOutcome>, SessionFailure> {
        if self.broken {
            return Err(SessionFailure::Temporary(format!(
                "the connection to {} is no longer usable",
                self.peer
            )));
        }
        let mail = self.mail_command(mail_from, recipients, message, smtputf8)?;
        let result = self.transaction(&mail, recipients, message).await;
        if result.is_err() {
            self.broken = true;
        }
        result?
    }

    /// Checks what the server can take and builds MAIL FROM.
    fn mail_command(
        &self,
        mail_from: &str,
        recipients: &[String],
        message: &[u8],
        smtputf8: bool,
    ) -> Result<String, SessionFailure> {
        let ext = &self.extensions;
        if !is_clean_address(mail_from) {
            return Err(SessionFailure::Permanent(
                "5.1.7 the sender address cannot be sent over SMTP".into(),
            ));
        }
        let size = message.len() as u64;
        if let Some(limit) = ext.size_limit().filter(|&limit| size > limit) {
            return Err(SessionFailure::Permanent(format!(
                "5.3.4 the message ({size} octets) is larger than {} accepts ({limit} octets)",
                self.peer
            )));
        }
        let utf8 = smtputf8 || !mail_from.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        if utf8 && !ext.smtputf8 {
            // RFC 6531 §3.2: no SMTPUTF8 at the server, no delivery.
            return Err(SessionFailure::Permanent(format!(
                "5.6.7 the message needs SMTPUTF8 (internationalized addresses or headers) and {} does not support it",
                self.peer
            )));
        }
        let eight_bit = message.iter().any(|&b| b >= 0x80);
        if eight_bit && !ext.eight_bit_mime {
            // TODO(rfc6152 §3): downgrade to 7bit (quoted-printable/base64)
            // instead of bouncing.
            return Err(SessionFailure::Permanent(format!(
                "5.6.3 conversion required: the message has 8-bit content and {} does not support 8BITMIME",
                self.peer
            )));
        }
        let mut mail = format!("MAIL FROM:<{mail_from}>");
        if ext.size.is_some() {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        Ok(mail)
    }

    /// The commands and replies of one transaction. The outer `Err` is a
    /// lost connection (the session is then broken); the inner result is
    /// what the server decided.
    async fn transaction(
        &mut self,
        mail: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Result<Vec<RecipientOutcome>, SessionFailure>, SessionFailure> {
        let mut outcomes: Vec<Option<RecipientOutcome>> = vec![None; recipients.len()];
        let mut steps = vec![Step::Mail];
        for (i, rcpt) in recipients.iter().enumerate() {
            if is_clean_address(rcpt) {
                steps.push(Step::Rcpt(i));
            } else {
                outcomes[i] = Some(RecipientOutcome::Permanent(
                    "5.1.3 the recipient address cannot be sent over SMTP".into(),
                ));
            }
        }
        if steps.len() == 1 {
            // No recipient can be sent: nothing to do at the server.
            return Ok(Ok(finish(outcomes)));
        }
        steps.push(Step::Data);
        let group = if self.extensions.pipelining {
            PIPELINE_GROUP
        } else {
            1
        };
        let mut mail_reply = None;
        let mut data_reply = None;
        let mut accepted = Vec::new();
        let mut next = 0;
        while next < steps.len() {
            // Without pipelining, stop as soon as the rest is pointless.
            let mail_failed = mail_reply
                .as_ref()
                .is_some_and(|r: &ServerReply| !r.is_positive());
            if mail_failed || (steps[next] == Step::Data && accepted.is_empty()) {
                break;
            }
            let end = (next + group).min(steps.len());
            for step in &steps[next..end] {
                self.conn.queue_line(&match *step {
                    Step::Mail => mail.to_string(),
                    Step::Rcpt(i) => format!("RCPT TO:<{}>", recipients[i]),
                    Step::Data => "DATA".to_string(),
                });
            }
            for step in &steps[next..end] {
                match *step {
                    Step::Mail => {
                        mail_reply = Some(self.reply(self.timeouts.command, "MAIL FROM").await?)
                    }
                    Step::Rcpt(i) => {
                        let reply = self.reply(self.timeouts.command, "RCPT TO").await?;
                        if reply.is_positive() {
                            accepted.push(i);
                        } else {
                            outcomes[i] = Some(self.rejected(&reply, "RCPT TO"));
                        }
                    }
                    Step::Data => {
                        data_reply = Some(self.reply(self.timeouts.data_init, "DATA").await?)
                    }
                }
            }
            next = end;
        }
        let mail_failure = match &mail_reply {
            Some(reply) if !reply.is_positive() => Some(self.refusal(reply, "MAIL FROM")),
            _ => None,
        };
        let data_started = data_reply.as_ref().is_some_and(|r| r.code == 354);
        if let Some(failure) = mail_failure {
            self.abandon(data_started).await?;
            return Ok(Err(failure));
        }
        if accepted.is_empty() || !data_started {
            if let Some(reply) = data_reply.as_ref().filter(|_| !accepted.is_empty()) {
                let outcome = self.rejected(reply, "DATA");
                for &i in &accepted {
                    outcomes[i] = Some(outcome.clone());
                }
            }
            self.abandon(data_started).await?;
            return Ok(Ok(finish(outcomes)));
        }
        // RFC 5321 §4.5.2: dot-stuffed, CRLF at the end, then CRLF.CRLF.
        let mut data = dot_stuff(message);
        data.extend_from_slice(b".\r\n");
        let sent = self.conn.send_data(&data, self.timeouts.data_block).await;
        sent.map_err(|e| self.lost(e, "sending the message"))?;
        let reply = self.reply(self.timeouts.data_end, "end of DATA").await?;
        let outcome = match reply.code / 100 {
            2 => RecipientOutcome::Delivered(self.said(&reply, "end of DATA")),
            _ => self.rejected(&reply, "end of DATA"),
        };
        for &i in &accepted {
            outcomes[i] = Some(outcome.clone());
        }
        Ok(Ok(finish(outcomes)))
    }

    /// Ends a transaction that will not deliver: an empty message if the
    /// server already said 354 (RFC 2920 §3.1), then RSET.
    async fn abandon(&mut self, data_started: bool) -> Result<(), SessionFailure> {
        if data_started {
            self.conn.queue_line(".");
            // Whatever it says, nothing was meant to be delivered.
            let _ = self.reply(self.timeouts.data_end, "end of DATA").await?;
        }
        let reply = self.command("RSET", "RSET").await?;
        if !reply.is_positive() {
            self.broken = true;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Mail,
    Rcpt(usize),
    Data,
}

fn finish(outcomes: Vec<Option<RecipientOutcome>>) -> Vec<RecipientOutcome> {
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| RecipientOutcome::Temporary("no reply for this recipient".into()))
        })
        .collect()
}

/// An address we can put between angle brackets on a command line.
fn is_clean_address(address: &str) -> bool {
    !address
        .bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == b'<' || b == b'>' || b == 0)
}
