//! Test support for `auth`: test messages, a signing domain whose keys are
//! made once per test run, and the independent verifier (dkimpy).
//!
//! Owns: nothing lasting (temporary folders are removed once keys are
//! loaded).
//!
//! Reads untrusted input: no (tests only).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::keys::{ensure_domain_keys, DomainKeys};
use super::signing::DkimSigner;

/// A plain CRLF message from `from` with `body`.
pub(crate) fn message(from: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\n\
         To: Bob <bob@example.test>\r\n\
         Subject: Test message\r\n\
         Date: Thu, 15 Jan 2026 10:00:00 +0900\r\n\
         Message-ID: <test-1@campus.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {body}"
    )
    .into_bytes()
}

/// A domain's keys and a signer holding them, made once per test run (RSA
/// key generation is slow in debug builds).
pub(crate) struct SigningDomain {
    pub(crate) keys: DomainKeys,
    pub(crate) signer: DkimSigner,
    /// The active RSA private key (PEM), for ARC sealing in tests.
    pub(crate) rsa_pem: Vec<u8>,
}

impl SigningDomain {
    /// `message(from, body)` with the domain's DKIM-Signature fields on top.
    pub(crate) fn signed(&self, from: &str, body: &str) -> Vec<u8> {
        let msg = message(from, body);
        let mut signed = self
            .signer
            .sign(&msg, &self.keys.domain)
            .expect("test signer has keys")
            .into_bytes();
        signed.extend_from_slice(&msg);
        signed
    }
}

/// The signing domain `sender.test`.
pub(crate) fn sender_domain() -> &'static SigningDomain {
    static DOMAIN: OnceLock<SigningDomain> = OnceLock::new();
    DOMAIN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = ensure_domain_keys(dir.path(), "sender.test").expect("test keys");
        let signer = DkimSigner::load(dir.path()).expect("test signer");
        let (_, rsa_pem) =
            super::keys::read_private_key(dir.path(), "sender.test", &keys.active[0])
                .expect("test RSA key");
        SigningDomain {
            keys,
            signer,
            rsa_pem,
        }
    })
}

const DKIMPY_SCRIPT: &str = r#"
import sys
try:
    import dkim
except ImportError:
    print("MISSING python3-dkim")
    sys.exit(3)
try:
    import nacl.signing
except ImportError:
    print("MISSING python3-nacl")
    sys.exit(3)
records = {}
for line in open(sys.argv[2], "rb").read().splitlines():
    name, _, value = line.partition(b" ")
    records[name.rstrip(b".").lower()] = value
def dnsfunc(name, timeout=5):
    if isinstance(name, str):
        name = name.encode()
    return records.get(name.rstrip(b".").lower())
message = open(sys.argv[1], "rb").read()
count = sum(1 for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            if line.lower().startswith(b"dkim-signature:"))
for idx in range(count):
    try:
        ok = dkim.DKIM(message).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.ValidationError as e:
        print("dkimpy:", e, file=sys.stderr)
        ok = False
    print("pass" if ok else "fail")
"#;

/// Runs dkimpy (Debian `python3-dkim`, `python3-nacl` for Ed25519) on
/// `signed`, giving it `keys`' public keys in place of DNS; one bool per
/// DKIM-Signature field, top first.
pub(crate) fn dkimpy_verify(signed: &[u8], keys: &DomainKeys, domain: &str) -> Vec<bool> {
    let dir = tempfile::tempdir().expect("temp dir");
    let message_path = dir.path().join("message.eml");
    std::fs::write(&message_path, signed).expect("write message");
    let mut records = String::new();
    for key in keys.active.iter().chain(&keys.retired) {
        records.push_str(&format!(
            "{}._domainkey.{domain} {}\n",
            key.selector,
            key.dns_value()
        ));
    }
    let records_path = dir.path().join("records");
    std::fs::write(&records_path, records).expect("write records");
    // Debian's interpreter, where python3-dkim installs (not a pyenv shim).
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        .unwrap_or("python3");
    let mut child = Command::new(python)
        .arg("-")
        .arg(&message_path)
        .arg(&records_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (Debian python3) for the dkimpy check");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(DKIMPY_SCRIPT.as_bytes())
        .expect("write script");
    let output = child.wait_with_output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if let Some(package) = stdout.trim().strip_prefix("MISSING ") {
        panic!("the independent DKIM verifier needs the Debian package {package}: apt-get install {package}");
    }
    assert!(
        output.status.success(),
        "dkimpy failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(|line| line.trim() == "pass").collect()
}
