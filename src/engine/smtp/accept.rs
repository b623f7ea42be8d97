//! DATA: read the message, add the Received: header, queue it durably, and
//! only then say 250 (RFC 5321 §4.1.1.4, §4.4).
//!
//! Owns: the step from an SMTP transaction to a queued message.
//!
//! Invariants:
//! - `250 2.0.0 Ok: queued as <id>` is sent only after `QueueDoor::submit`
//!   returned, i.e. after the message and its envelope are fsynced.
//! - A message with a defect (bare CR/LF, too big, overlong line) is read to
//!   its real end and then refused; nothing of it is queued.
//! - The transaction ends with DATA whatever the outcome.
//! - A message that already carries `MAX_HOPS` or more Received: fields is
//!   refused (554 5.4.6, RFC 5321 §6.3 loop detection; RFC 3463 X.4.6):
//!   forwarding between systems can otherwise circle for ever.
//! - The Received: header names the protocol (RFC 3848, RFC 6531 §3.7.4) but
//!   never the login of an authenticated client.
//!
//! Reads untrusted input: yes, message content (via `data.rs`) and the
//! HELO name (cleaned before it goes into the header).

use std::net::{IpAddr, SocketAddr};

use super::connection::{ConnError, Connection};
use super::data::DataReader;
use super::reply::Reply;
use super::session::{Helo, Phase, Session, Step, Transaction};
use crate::engine::queue::{Draft, QueueId};
use crate::mime::header_section::count_fields;

/// Received: fields that mean a routing loop. RFC 5321 §6.3 asks for a
/// large threshold, "normally at least 100".
pub(super) const MAX_HOPS: usize = 100;

impl Session {
    pub(super) async fn data(&mut self, conn: &mut Connection) -> Result<Step, ConnError> {
        let (helo, tx) = match std::mem::replace(&mut self.phase, Phase::Connected) {
            Phase::Transaction(helo, tx) if !tx.recipients.is_empty() => (helo, tx),
            Phase::Transaction(helo, tx) => {
                self.phase = Phase::Transaction(helo, tx);
                // RFC 2920 §3.1: DATA after only failed RCPTs gets 554.
                return Ok(Step::Reply(Reply::new(
                    554,
                    "5.5.1",
                    "Error: no valid recipients",
                )));
            }
            other => {
                self.phase = other;
                return Ok(Step::Reply(Reply::new(
                    503,
                    "5.5.1",
                    "Error: need RCPT command",
                )));
            }
        };
        self.phase = Phase::Greeted(helo.clone());
        let limits = &self.ctx.config.engine;
        let mut reader = DataReader::new(limits.max_message_bytes, limits.max_line_bytes);
        conn.queue(&Reply::bare(354, "End data with <CR><LF>.<CR><LF>"));
        conn.read_data(&mut reader).await?;
        let size = reader.size();
        let body = match reader.finish() {
            Ok(body) => body,
            Err(defect) => {
                tracing::warn!(peer = %self.peer, defect = ?defect, size, "message refused");
                let reply = defect.reply(limits.max_message_bytes, limits.max_line_bytes);
                return Ok(Step::Reply(reply));
            }
        };
        Ok(Step::Reply(self.queue_message(&helo, tx, body).await))
    }

    async fn queue_message(&self, helo: &Helo, tx: Transaction, mut body: Vec<u8>) -> Reply {
        let hops = count_fields(&body, "Received");
        if hops >= MAX_HOPS {
            tracing::warn!(peer = %self.peer, sender = %tx.sender, hops, "message refused: mail loop");
            return Reply::new(
                554,
                "5.4.6",
                format!("Too many hops ({hops} Received: fields): the message is in a mail loop"),
            );
        }
        let trust_fields = match self.authenticate(helo, &tx.sender, &mut body).await {
            Ok(fields) => fields,
            Err(refusal) => {
                tracing::warn!(peer = %self.peer, sender = %tx.sender, reply = ?refusal, "message refused by policy");
                return refusal;
            }
        };
        let id = QueueId::generate();
        let header = received_header(&ReceivedFields {
            helo,
            peer: self.peer,
            hostname: self.hostname(),
            protocol: protocol(helo.extended, self.tls, self.login.is_some(), tx.smtputf8),
            id: &id,
            single_recipient: match tx.recipients.as_slice() {
                [only] => Some(only.as_str()),
                _ => None,
            },
            date: &chrono::Utc::now().to_rfc2822(),
        });
        // Ours go on top, newest first: the verdict or signature, then the
        // trace field (RFC 8601 §5, RFC 5321 §4.4).
        let mut message = Vec::with_capacity(trust_fields.len() + header.len() + body.len());
        message.extend_from_slice(trust_fields.as_bytes());
        message.extend_from_slice(header.as_bytes());
        message.extend_from_slice(&body);
        drop(body);
        let draft = Draft {
            sender: tx.sender,
            recipients: tx.recipients,
            body_8bit: tx.body_8bit,
            smtputf8: tx.smtputf8,
            authenticated: self.login.clone(),
            lane: None,
        };
        let envelope = match self.ctx.door.submit(id.clone(), draft, message).await {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "cannot write an accepted message to the spool");
                return Reply::new(
                    451,
                    "4.3.0",
                    "Error: local error in processing; try again later",
                );
            }
        };
        crate::ops::counters::message_accepted();
        tracing::info!(queue_id = %id, peer = %self.peer, port = self.port.name(),
            sender = %envelope.sender, recipients = envelope.recipients.len(), size = envelope.size,
            lane = %envelope.lane, "message accepted");
        Reply::new(250, "2.0.0", format!("Ok: queued as {id}"))
    }
}

/// The "with" protocol name: RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA) and
/// RFC 6531 §3.7.4 (UTF8SMTP...) for SMTPUTF8 transactions.
pub(super) fn protocol(
    extended: bool,
    tls: bool,
    authenticated: bool,
    smtputf8: bool,
) -> &'static str {
    match (extended, smtputf8, tls, authenticated) {
        (false, ..) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, true, false) => "ESMTPS",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, true) => "ESMTPSA",
        (true, true, false, false) => "UTF8SMTP",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, true) => "UTF8SMTPSA",
    }
}

pub(super) struct ReceivedFields<'a> {
    pub(super) helo: &'a Helo,
    pub(super) peer: SocketAddr,
    pub(super) hostname: &'a str,
    pub(super) protocol: &'static str,
    pub(super) id: &'a QueueId,
    pub(super) single_recipient: Option<&'a str>,
    pub(super) date: &'a str,
}

/// `Received: from <helo> ([ip]) by <host> with <proto> id <id> for <rcpt>; <date>`
/// (RFC 5321 §4.4), folded over lines, CRLF-terminated.
pub(super) fn received_header(f: &ReceivedFields<'_>) -> String {
    let ip = match f.peer.ip() {
        IpAddr::V4(v4) => format!("[{v4}]"),
        // RFC 5321 §4.1.3: IPv6 address literals carry a tag.
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    };
    let mut header = format!(
        "Received: from {} ({ip})\r\n\tby {} with {} id {}",
        clean_helo(&f.helo.name),
        f.hostname,
        f.protocol,
        f.id
    );
    if let Some(rcpt) = f.single_recipient {
        header.push_str(&format!("\r\n\tfor <{rcpt}>"));
    }
    header.push_str(&format!(";\r\n\t{}\r\n", f.date));
    header
}

/// Keeps the characters of host names and address literals; anything else
/// becomes '?', so a HELO name cannot break the header.
fn clean_helo(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(255)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._:[]".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_header_reads_as_rfc5321_says() {
        let id = QueueId::parse("0190a1b2c3d40001abcdef").unwrap();
        let helo = Helo {
            name: "client.example.org".into(),
            extended: true,
        };
        let fields = ReceivedFields {
            helo: &helo,
            peer: "192.0.2.7:4000".parse().unwrap(),
            hostname: "mx.campus.test",
            protocol: protocol(true, true, true, false),
            id: &id,
            single_recipient: Some("alice@campus.test"),
            date: "Tue, 1 Jul 2025 10:52:37 +0000",
        };
        assert_eq!(
            received_header(&fields),
            "Received: from client.example.org ([192.0.2.7])\r\n\tby mx.campus.test with ESMTPSA id 0190a1b2c3d40001abcdef\r\n\tfor <alice@campus.test>;\r\n\tTue, 1 Jul 2025 10:52:37 +0000\r\n"
        );
        let helo = Helo {
            name: "evil\r\nX-Injected: yes".into(),
            extended: false,
        };
        let fields = ReceivedFields {
            helo: &helo,
            peer: "[2001:db8::1]:25".parse().unwrap(),
            single_recipient: None,
            protocol: protocol(false, false, false, false),
            ..fields
        };
        let header = received_header(&fields);
        assert!(header.starts_with("Received: from evil??X-Injected:?yes ([IPv6:2001:db8::1])\r\n\tby mx.campus.test with SMTP id "), "{header}");
        assert!(!header.contains("for <"));
    }

    #[test]
    fn protocol_names() {
        assert_eq!(protocol(true, false, false, false), "ESMTP");
        assert_eq!(protocol(true, true, false, false), "ESMTPS");
        assert_eq!(protocol(true, true, true, true), "UTF8SMTPSA");
        assert_eq!(protocol(false, true, true, true), "SMTP");
    }
}
