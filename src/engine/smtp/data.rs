//! The DATA reader: message content bytes in, the unstuffed message out.
//!
//! Owns: the end-of-data rule and dot-unstuffing of RFC 5321 §4.1.1.4 and
//! §4.5.2, and the per-message limits (size, line length).
//!
//! Invariants:
//! - Only `<CRLF>.<CRLF>` ends the message (the start of the data counts as
//!   following a CRLF). `\n.\n`, `\r\n.\n`, `\n.\r\n` and friends do not: a
//!   peer cannot smuggle a second message past us that another server would
//!   split differently (SMTP smuggling).
//! - A bare CR or bare LF anywhere in the content marks the message
//!   `BareLineEnd` (RFC 5321 §2.3.8); the reader still consumes up to the real
//!   end so the session stays in step, and the caller queues nothing.
//! - Past a limit the reader keeps counting but stops storing bytes, so a
//!   huge message costs no memory.
//! - No I/O: `feed` takes whatever bytes arrived and says how many it used.
//!
//! Reads untrusted input: yes, message content from every peer.

use super::reply::Reply;

/// Where the reader is relative to line structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// At the start of a line that followed a CRLF (or the start of data).
    LineStart,
    /// Saw "." at a line start.
    Dot,
    /// Saw ".\r" at a line start.
    DotCr,
    /// Inside a line.
    InLine,
    /// Saw "\r" inside a line.
    Cr,
}

/// Why a complete message cannot be accepted; checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataDefect {
    /// A CR or LF not part of a CRLF pair.
    BareLineEnd,
    /// More content octets than `max_message_bytes`.
    TooBig,
    /// A line longer than `max_line_bytes` (CRLF included).
    LineTooLong,
}

impl DataDefect {
    /// The reply refusing a message with this defect (SMTP and LMTP alike).
    pub(crate) fn reply(self, max_message_bytes: u64, max_line_bytes: usize) -> Reply {
        match self {
            DataDefect::BareLineEnd => Reply::new(
                550,
                "5.6.0",
                "Message refused: bare LF/CR not allowed, lines must end with CRLF (RFC 5321 §2.3.8)",
            ),
            DataDefect::TooBig => Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({max_message_bytes} octets)"),
            ),
            DataDefect::LineTooLong => Reply::new(
                500,
                "5.5.2",
                format!("Message refused: line too long (over {max_line_bytes} octets, RFC 5321 §4.5.3.1.6)"),
            ),
        }
    }
}

/// Progress after `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// All given bytes were used; the end has not been seen.
    NeedMore,
    /// The end `<CRLF>.<CRLF>` ended after this many of the given bytes; the
    /// rest belong to the next command (PIPELINING).
    Done(usize),
}

pub(crate) struct DataReader {
    position: Position,
    max_message_bytes: u64,
    max_line_bytes: usize,
    line_len: usize,
    size: u64,
    defect: Option<DataDefect>,
    message: Vec<u8>,
}

impl DataReader {
    pub(crate) fn new(max_message_bytes: u64, max_line_bytes: usize) -> DataReader {
        DataReader {
            position: Position::LineStart,
            max_message_bytes,
            max_line_bytes,
            line_len: 0,
            size: 0,
            defect: None,
            message: Vec::new(),
        }
    }

    /// Consumes content bytes until the end of data or the end of `input`.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Progress {
        for (i, &byte) in input.iter().enumerate() {
            if self.step(byte) {
                return Progress::Done(i + 1);
            }
        }
        Progress::NeedMore
    }

    /// The unstuffed message, or the first defect found. Call after `Done`.
    pub(crate) fn finish(self) -> Result<Vec<u8>, DataDefect> {
        match self.defect {
            Some(defect) => Err(defect),
            None => Ok(self.message),
        }
    }

    /// Octets of content seen so far (after unstuffing), stored or not.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// One byte; true when it completed `<CRLF>.<CRLF>`.
    ///
    /// The positions track the suffix of the input seen so far, so the end
    /// is found exactly where the byte string "\r\n.\r\n" occurs.
    fn step(&mut self, byte: u8) -> bool {
        use Position::*;
        self.line_len += 1;
        match self.position {
            LineStart | Dot | InLine if byte == b'\n' => self.bare_line_end(),
            LineStart if byte == b'.' => self.position = Dot,
            Dot if byte == b'\r' => self.position = DotCr,
            LineStart | InLine if byte == b'\r' => self.position = Cr,
            // RFC 5321 §4.5.2: a line starting with "." loses that first dot.
            LineStart | Dot | InLine => {
                self.store(byte);
                self.position = InLine;
            }
            DotCr if byte == b'\n' => return true,
            Cr if byte == b'\n' => {
                self.store(b'\r');
                self.store(b'\n');
                self.line_len = 0;
                self.position = LineStart;
            }
            // The CR before this one was bare; this one may start a CRLF.
            DotCr | Cr if byte == b'\r' => {
                self.mark(DataDefect::BareLineEnd);
                self.position = Cr;
            }
            DotCr | Cr => {
                self.mark(DataDefect::BareLineEnd);
                self.store(byte);
                self.position = InLine;
            }
        }
        if self.line_len > self.max_line_bytes {
            self.mark(DataDefect::LineTooLong);
        }
        false
    }

    /// A LF without CR before it. The next line is not a line start: a dot
    /// there neither ends the message nor is unstuffed.
    fn bare_line_end(&mut self) {
        self.mark(DataDefect::BareLineEnd);
        self.line_len = 0;
        self.position = Position::InLine;
    }

    fn store(&mut self, byte: u8) {
        self.size += 1;
        if self.size > self.max_message_bytes {
            self.mark(DataDefect::TooBig);
        }
        if self.defect.is_none() {
            self.message.push(byte);
        }
    }

    fn mark(&mut self, defect: DataDefect) {
        let keep = match self.defect {
            None => true,
            Some(old) => rank(defect) < rank(old),
        };
        if keep {
            self.defect = Some(defect);
        }
        self.message = Vec::new();
    }
}

fn rank(defect: DataDefect) -> u8 {
    match defect {
        DataDefect::BareLineEnd => 0,
        DataDefect::TooBig => 1,
        DataDefect::LineTooLong => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> (Progress, Result<Vec<u8>, DataDefect>) {
        let mut reader = DataReader::new(1000, 100);
        let progress = reader.feed(input);
        (progress, reader.finish())
    }

    fn message(input: &[u8]) -> Vec<u8> {
        let (progress, result) = read(input);
        assert_eq!(progress, Progress::Done(input.len()), "{input:?}");
        result.unwrap()
    }

    #[test]
    fn reads_to_the_end_and_unstuffs_dots() {
        assert_eq!(
            message(b"Subject: x\r\n\r\nhi\r\n.\r\n"),
            b"Subject: x\r\n\r\nhi\r\n"
        );
        assert_eq!(message(b".\r\n"), b"");
        assert_eq!(message(b"..\r\n.\r\n"), b".\r\n");
        assert_eq!(message(b"a\r\n...x\r\n.\r\n"), b"a\r\n..x\r\n");
        assert_eq!(message(b"a.\r\n.b\r\n.\r\n"), b"a.\r\nb\r\n");
    }

    #[test]
    fn leaves_pipelined_bytes_after_the_end() {
        let mut reader = DataReader::new(1000, 100);
        assert_eq!(reader.feed(b"hi\r\n.\r\nQUIT\r\n"), Progress::Done(7));
        assert_eq!(reader.finish().unwrap(), b"hi\r\n");
    }

    #[test]
    fn feeds_in_pieces() {
        let mut reader = DataReader::new(1000, 100);
        let input = b"one\r\n..two\r\n.\r\n";
        for (i, b) in input.iter().enumerate() {
            let progress = reader.feed(&[*b]);
            let expected = if i + 1 == input.len() {
                Progress::Done(1)
            } else {
                Progress::NeedMore
            };
            assert_eq!(progress, expected);
        }
        assert_eq!(reader.finish().unwrap(), b"one\r\n.two\r\n");
    }

    #[test]
    fn smuggling_variants_do_not_end_the_message_and_are_rejected() {
        for smuggled in [
            &b"a\n.\nMAIL FROM:<x@evil.test>\r\n"[..],
            b"a\r\n.\nMAIL FROM:<x@evil.test>\r\n",
            b"a\n.\r\nMAIL FROM:<x@evil.test>\r\n",
            b"a\r.\r\nMAIL FROM:<x@evil.test>\r\n",
            b"a\r\n.\r.\r\n",
            b"a\rb\r\n",
            b"a\r\n.\rx\r\n",
        ] {
            let mut input = smuggled.to_vec();
            let (progress, _) = read(&input);
            assert_eq!(
                progress,
                Progress::NeedMore,
                "{smuggled:?} ended the data early"
            );
            input.extend_from_slice(b"\r\n.\r\n");
            let (progress, result) = read(&input);
            assert_eq!(progress, Progress::Done(input.len()), "{smuggled:?}");
            assert_eq!(result, Err(DataDefect::BareLineEnd), "{smuggled:?}");
        }
    }

    #[test]
    fn a_real_crlf_dot_crlf_ends_even_after_a_bare_cr() {
        // "\r\n.\r" + "\r\n.\r\n": the end sequence starts at the second CR.
        let input = b"a\r\n.\r\r\n.\r\nQUIT\r\n";
        let (progress, result) = read(input);
        assert_eq!(progress, Progress::Done(input.len() - 6));
        assert_eq!(result, Err(DataDefect::BareLineEnd));
    }

    #[test]
    fn overlong_line_is_read_to_the_end_then_rejected() {
        let mut input = vec![b'x'; 150];
        input.extend_from_slice(b"\r\nok\r\n.\r\n");
        assert_eq!(
            read(&input),
            (Progress::Done(input.len()), Err(DataDefect::LineTooLong))
        );
        let mut exact = vec![b'x'; 98];
        exact.extend_from_slice(b"\r\n.\r\n");
        assert!(
            read(&exact).1.is_ok(),
            "98 octets + CRLF = 100 is within the limit"
        );
    }

    #[test]
    fn oversize_message_is_counted_not_stored() {
        let mut reader = DataReader::new(10, 100);
        let progress = reader.feed(b"0123456789abcdef\r\n.\r\n");
        assert_eq!(progress, Progress::Done(21));
        assert_eq!(reader.size(), 18);
        assert_eq!(reader.message.len(), 0);
        assert_eq!(reader.finish(), Err(DataDefect::TooBig));
    }

    #[test]
    fn bare_line_end_wins_over_other_defects() {
        let mut input = vec![b'x'; 150];
        input.extend_from_slice(b"\n\r\n.\r\n");
        assert_eq!(read(&input).1, Err(DataDefect::BareLineEnd));
    }
}
