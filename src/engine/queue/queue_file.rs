//! The layout of a queued message's one file, `queue/<id>.msg`: the
//! envelope as accepted and the message bytes, so accepting needs one file
//! and one data sync, not two.
//!
//! Layout: the magic `CMQ1`, a space, the envelope's length in decimal, a
//! line feed, the envelope (JSON), a line feed, then the message exactly as
//! accepted. The message is never parsed here.
//!
//! Reads untrusted input: queue files are ours, but a damaged one (a disk
//! fault, a hand edit) must be refused with a reason, never a panic.

const MAGIC: &[u8] = b"CMQ1 ";
/// Longest envelope header accepted (a 100,000-recipient envelope is a few
/// MB; far beyond that the file is damaged).
const MAX_ENVELOPE: usize = 256 * 1024 * 1024;

/// The file's bytes for `envelope` (JSON) and `message`.
pub fn encode(envelope: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(envelope.len() + message.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(envelope.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(envelope);
    out.push(b'\n');
    out.extend_from_slice(message);
    out
}

/// (envelope JSON, message) of a queue file.
pub fn split(file: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let rest = file
        .strip_prefix(MAGIC)
        .ok_or("not a queue file (no CMQ1 header)")?;
    let line_end = rest
        .iter()
        .take(12)
        .position(|b| *b == b'\n')
        .ok_or("queue file header has no length")?;
    let len: usize = std::str::from_utf8(&rest[..line_end])
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n <= MAX_ENVELOPE)
        .ok_or("queue file header has a bad length")?;
    let body = &rest[line_end + 1..];
    if body.len() < len + 1 || body[len] != b'\n' {
        return Err("queue file is shorter than its header says".into());
    }
    Ok((&body[..len], &body[len + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_message_come_back_apart() {
        let file = encode(br#"{"id":"x"}"#, b"Subject: a\r\n\r\nCMQ1 5\n\r\n");
        let (envelope, message) = split(&file).unwrap();
        assert_eq!(envelope, br#"{"id":"x"}"#);
        assert_eq!(message, b"Subject: a\r\n\r\nCMQ1 5\n\r\n");
        assert_eq!(split(&encode(b"{}", b"")).unwrap(), (&b"{}"[..], &b""[..]));
    }

    #[test]
    fn damaged_files_are_refused_with_a_reason() {
        let good = encode(br#"{"id":"x"}"#, b"hi");
        for bad in [
            &b""[..],
            b"Subject: old .eml file\r\n",
            b"CMQ1 \n{}",
            b"CMQ1 99999999999999999999\n",
            b"CMQ1 10\n{}",
            &good[..good.len() - 4],
        ] {
            assert!(split(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
