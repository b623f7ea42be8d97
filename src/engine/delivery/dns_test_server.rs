//! Test support: a tiny authoritative DNS server on 127.0.0.1 (UDP) serving
//! a fixed zone (MX, A, AAAA, TXT), so resolver, MX and mail authentication
//! (`auth`) tests use real DNS packets and never the internet.
//!
//! Owns: one UDP socket and the thread answering on it (stopped on drop).
//!
//! Reads untrusted input: no (tests only; queries come from our resolver).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record};

/// A zone: names (lower case, with or without trailing dot) and their data.
#[derive(Default)]
pub(crate) struct Zone {
    records: HashMap<String, Vec<RData>>,
    servfail: Vec<String>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn name(text: &str) -> Name {
    let absolute = format!("{}.", text.trim_end_matches('.'));
    Name::from_ascii(&absolute).unwrap_or_else(|_| Name::root())
}

impl Zone {
    pub(crate) fn mx(mut self, owner: &str, preference: u16, exchange: &str) -> Zone {
        let exchange = if exchange == "." {
            Name::root()
        } else {
            name(exchange)
        };
        self.records
            .entry(key(owner))
            .or_default()
            .push(RData::MX(MX::new(preference, exchange)));
        self
    }

    pub(crate) fn ip(mut self, owner: &str, ip: &str) -> Zone {
        let data = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => RData::A(A(v4)),
            Ok(IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
            Err(_) => panic!("bad test address {ip}"),
        };
        self.records.entry(key(owner)).or_default().push(data);
        self
    }

    /// A TXT record; text longer than 255 bytes is split into several
    /// character-strings, as zone files and DNS hosting panels do.
    pub(crate) fn txt(mut self, owner: &str, text: &str) -> Zone {
        let strings = text
            .as_bytes()
            .chunks(255)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect();
        self.records
            .entry(key(owner))
            .or_default()
            .push(RData::TXT(TXT::new(strings)));
        self
    }

    /// A name that exists but has only records of no interest (a TXT).
    pub(crate) fn exists(mut self, owner: &str) -> Zone {
        self.records.entry(key(owner)).or_default();
        self
    }

    pub(crate) fn servfail(mut self, owner: &str) -> Zone {
        self.servfail.push(key(owner));
        self
    }

    fn answer(&self, query: &Message) -> Message {
        let mut response = Message::response(query.metadata.id, query.metadata.op_code);
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.authoritative = true;
        let Some(question) = query.queries.first() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return response;
        };
        response.add_query(question.clone());
        let owner = key(&question.name().to_ascii());
        if self.servfail.contains(&owner) {
            response.metadata.response_code = ResponseCode::ServFail;
            return response;
        }
        let Some(data) = self.records.get(&owner) else {
            response.metadata.response_code = ResponseCode::NXDomain;
            return response;
        };
        for rdata in data {
            if rdata.record_type() == question.query_type() {
                response.add_answer(Record::from_rdata(
                    question.name().clone(),
                    60,
                    rdata.clone(),
                ));
            }
        }
        response
    }
}

pub(crate) struct TestDns {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl TestDns {
    pub(crate) fn start(zone: Zone) -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Ok(bytes) = zone.answer(&query).to_vec() {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        TestDns { addr, stop }
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
