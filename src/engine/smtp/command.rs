//! The SMTP/LMTP command parser: one line of bytes in, a typed command out.
//!
//! Owns: the command grammar of RFC 5321 §4.1 (plus LHLO from RFC 2033 §4.1
//! and AUTH from RFC 4954 §4), and the MAIL/RCPT parameters this server
//! advertises: SIZE (RFC 1870), BODY=7BIT/8BITMIME (RFC 6152), SMTPUTF8
//! (RFC 6531).
//!
//! Invariants:
//! - No I/O and no session state: the same line always parses the same way;
//!   whether a command is allowed now is the session's business.
//! - Every malformed line yields a `CommandError` that maps to one reply; the
//!   parser never panics on any input (NUL, non-UTF-8, overlong, empty).
//! - Addresses come out exactly as the peer wrote them inside `<>` (source
//!   routes stripped); checking them is `directory::address`'s job.
//!
//! Reads untrusted input: yes, every command line from every peer.

use super::reply::Reply;

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub(crate) const MAX_COMMAND_LINE: usize = 512;
/// Longest AUTH command or SASL response line (RFC 4954 §4).
pub(crate) const MAX_AUTH_LINE: usize = 12288;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Ehlo(String),
    Helo(String),
    /// LMTP's greeting (RFC 2033 §4.1); only the LMTP server accepts it.
    Lhlo(String),
    Mail(MailFrom),
    Rcpt(RcptTo),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    StartTls,
    Auth {
        mechanism: String,
        /// The initial response; `Some("")` when the client sent "=".
        initial: Option<String>,
    },
}

/// `MAIL FROM:<reverse-path> [parameters]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailFrom {
    /// The reverse path; empty for the null sender `<>`.
    pub(crate) sender: String,
    pub(crate) size: Option<u64>,
    pub(crate) body_8bit: bool,
    pub(crate) smtputf8: bool,
    /// `XQUEUEID=<id>`: our engine's queue id, on LMTP only (a private
    /// extension, RFC 5321 §2.2.2; the SMTP server refuses it).
    pub(crate) queue_ref: Option<String>,
}

/// Longest `XQUEUEID` value (queue ids are 22 characters).
const MAX_QUEUE_REF: usize = 64;

/// `RCPT TO:<forward-path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RcptTo {
    pub(crate) recipient: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CommandError {
    #[error("line too long")]
    LineTooLong,
    #[error("unknown command")]
    Unknown,
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    #[error("unsupported parameter: {0}")]
    UnsupportedParameter(String),
}

impl CommandError {
    /// The reply the peer gets for this error.
    pub(crate) fn reply(&self) -> Reply {
        match self {
            CommandError::LineTooLong => Reply::new(500, "5.5.2", "Line too long"),
            CommandError::Unknown => Reply::new(500, "5.5.1", "Command unrecognized"),
            CommandError::Syntax(what) => Reply::new(501, "5.5.4", format!("Syntax error: {what}")),
            // RFC 5321 §4.1.1.11: 555 for MAIL/RCPT parameters not recognized.
            CommandError::UnsupportedParameter(p) => {
                Reply::new(555, "5.5.4", format!("Unsupported parameter {p}"))
            }
        }
    }
}

/// Parses one command line; `line` may end in CRLF or a bare LF (commands are
/// parsed leniently; DATA content is not, see `data.rs`).
pub(crate) fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    let line = strip_line_end(line);
    let is_auth = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"AUTH");
    let limit = if is_auth {
        MAX_AUTH_LINE
    } else {
        MAX_COMMAND_LINE
    };
    if line.len() + 2 > limit {
        return Err(CommandError::LineTooLong);
    }
    if line.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
        return Err(CommandError::Syntax("control character in command"));
    }
    let line =
        std::str::from_utf8(line).map_err(|_| CommandError::Syntax("command is not UTF-8"))?;
    let (verb, args) = match line.split_once(' ') {
        Some((verb, args)) => (verb, args.trim_matches(' ')),
        None => (line, ""),
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => Ok(Command::Ehlo(domain_argument(args)?)),
        "HELO" => Ok(Command::Helo(domain_argument(args)?)),
        "LHLO" => Ok(Command::Lhlo(domain_argument(args)?)),
        "MAIL" => parse_mail(args).map(Command::Mail),
        "RCPT" => parse_rcpt(args).map(Command::Rcpt),
        "DATA" => no_arguments(args, Command::Data),
        "RSET" => no_arguments(args, Command::Rset),
        "QUIT" => no_arguments(args, Command::Quit),
        // RFC 3207 §4: STARTTLS takes no parameters; 501 otherwise.
        "STARTTLS" => no_arguments(args, Command::StartTls),
        "NOOP" => Ok(Command::Noop),
        "VRFY" => Ok(Command::Vrfy),
        "HELP" => Ok(Command::Help),
        "AUTH" => parse_auth(args),
        _ => Err(CommandError::Unknown),
    }
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn no_arguments(args: &str, command: Command) -> Result<Command, CommandError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(CommandError::Syntax("this command takes no arguments"))
    }
}

/// The host name or address literal of EHLO/HELO/LHLO (RFC 5321 §4.1.1.1).
fn domain_argument(args: &str) -> Result<String, CommandError> {
    match args.split(' ').next() {
        Some(domain) if !domain.is_empty() => Ok(domain.to_string()),
        _ => Err(CommandError::Syntax("a host name is required")),
    }
}

fn parse_mail(args: &str) -> Result<MailFrom, CommandError> {
    let rest =
        strip_keyword(args, "FROM:").ok_or(CommandError::Syntax("use MAIL FROM:<address>"))?;
    let (sender, params) = parse_path(rest)?;
    let mut mail = MailFrom {
        sender,
        size: None,
        body_8bit: false,
        smtputf8: false,
        queue_ref: None,
    };
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        match (key.to_ascii_uppercase().as_str(), value) {
            // RFC 1870 §6: SIZE=<digits>.
            ("SIZE", Some(v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                let size = v
                    .parse()
                    .map_err(|_| CommandError::Syntax("SIZE value too large"))?;
                mail.size = Some(size);
            }
            ("SIZE", _) => return Err(CommandError::Syntax("SIZE needs a number")),
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => mail.body_8bit = true,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => mail.body_8bit = false,
            ("SMTPUTF8", None) => mail.smtputf8 = true,
            ("XQUEUEID", Some(v))
                if !v.is_empty()
                    && v.len() <= MAX_QUEUE_REF
                    && v.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                mail.queue_ref = Some(v.to_string())
            }
            _ => return Err(CommandError::UnsupportedParameter(param.to_string())),
        }
    }
    Ok(mail)
}

fn parse_rcpt(args: &str) -> Result<RcptTo, CommandError> {
    let rest = strip_keyword(args, "TO:").ok_or(CommandError::Syntax("use RCPT TO:<address>"))?;
    let (recipient, params) = parse_path(rest)?;
    if recipient.is_empty() {
        return Err(CommandError::Syntax("a recipient address is required"));
    }
    // No RCPT parameters are advertised (DSN's NOTIFY/ORCPT come later).
    if let Some(param) = params.split(' ').find(|p| !p.is_empty()) {
        return Err(CommandError::UnsupportedParameter(param.to_string()));
    }
    Ok(RcptTo { recipient })
}

/// `FROM:` / `TO:` case-insensitively, allowing spaces after the colon.
fn strip_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    if head.eq_ignore_ascii_case(keyword) {
        Some(args[keyword.len()..].trim_start_matches(' '))
    } else {
        None
    }
}

/// Parses `<path>` and returns (address, parameters after it). A source route
/// `<@a,@b:user@d>` is accepted and ignored (RFC 5321 §4.1.2, §C).
fn parse_path(text: &str) -> Result<(String, &str), CommandError> {
    let inner = text.strip_prefix('<').ok_or(CommandError::Syntax(
        "the address must be in angle brackets",
    ))?;
    let end = inner
        .find('>')
        .ok_or(CommandError::Syntax("missing '>' after the address"))?;
    let (path, rest) = (&inner[..end], &inner[end + 1..]);
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(CommandError::Syntax("expected a space after '>'"));
    }
    let address = match path.strip_prefix('@') {
        Some(routed) => match routed.split_once(':') {
            Some((_route, address)) => address,
            None => return Err(CommandError::Syntax("bad source route")),
        },
        None => path,
    };
    if address.contains(['<', ' ']) {
        return Err(CommandError::Syntax("bad character in the address"));
    }
    Ok((address.to_string(), rest))
}

fn parse_auth(args: &str) -> Result<Command, CommandError> {
    let mut parts = args.split(' ').filter(|p| !p.is_empty());
    let mechanism = parts
        .next()
        .ok_or(CommandError::Syntax("AUTH needs a mechanism"))?
        .to_ascii_uppercase();
    // RFC 4954 §4: "=" is an empty initial response.
    let initial = parts.next().map(|r| {
        if r == "=" {
            String::new()
        } else {
            r.to_string()
        }
    });
    if parts.next().is_some() {
        return Err(CommandError::Syntax("too many AUTH arguments"));
    }
    Ok(Command::Auth { mechanism, initial })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(sender: &str) -> MailFrom {
        MailFrom {
            sender: sender.into(),
            size: None,
            body_8bit: false,
            smtputf8: false,
            queue_ref: None,
        }
    }

    #[test]
    fn parses_simple_verbs_case_insensitively() {
        assert_eq!(
            parse_command(b"ehlo client.test\r\n"),
            Ok(Command::Ehlo("client.test".into()))
        );
        assert_eq!(
            parse_command(b"HELO [192.0.2.1]\n"),
            Ok(Command::Helo("[192.0.2.1]".into()))
        );
        assert_eq!(
            parse_command(b"LHLO engine.test\r\n"),
            Ok(Command::Lhlo("engine.test".into()))
        );
        assert_eq!(parse_command(b"data\r\n"), Ok(Command::Data));
        assert_eq!(parse_command(b"NOOP anything\r\n"), Ok(Command::Noop));
        assert_eq!(parse_command(b"VRFY alice\r\n"), Ok(Command::Vrfy));
        assert_eq!(parse_command(b"StartTLS\r\n"), Ok(Command::StartTls));
        assert_eq!(parse_command(b"QUIT"), Ok(Command::Quit));
    }

    #[test]
    fn parses_mail_with_parameters() {
        assert_eq!(
            parse_command(b"MAIL FROM:<>\r\n"),
            Ok(Command::Mail(mail("")))
        );
        assert_eq!(
            parse_command(b"mail from: <a@x.test> SIZE=1000 BODY=8BITMIME SMTPUTF8\r\n"),
            Ok(Command::Mail(MailFrom {
                sender: "a@x.test".into(),
                size: Some(1000),
                body_8bit: true,
                smtputf8: true,
                queue_ref: None,
            }))
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<a@x.test> XQUEUEID=018f0000abc\r\n"),
            Ok(Command::Mail(MailFrom {
                queue_ref: Some("018f0000abc".into()),
                ..mail("a@x.test")
            }))
        );
        assert!(parse_command(b"MAIL FROM:<a@x.test> XQUEUEID=../x\r\n").is_err());
        assert_eq!(
            parse_command(b"MAIL FROM:<@relay.test,@b.test:a@x.test>\r\n"),
            Ok(Command::Mail(mail("a@x.test")))
        );
    }

    #[test]
    fn parses_rcpt_and_auth() {
        assert_eq!(
            parse_command("RCPT TO:<김철수@campus.test>\r\n".as_bytes()),
            Ok(Command::Rcpt(RcptTo {
                recipient: "김철수@campus.test".into()
            }))
        );
        assert_eq!(
            parse_command(b"AUTH plain AGEAYg==\r\n"),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse_command(b"AUTH LOGIN =\r\n"),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: Some(String::new())
            })
        );
    }

    #[test]
    fn rejects_malformed_commands() {
        let syntax = |line: &[u8]| matches!(parse_command(line), Err(CommandError::Syntax(_)));
        assert!(syntax(b"MAIL FROM:a@x.test\r\n"), "brackets are required");
        assert!(syntax(b"MAIL FROM:<a@x.test\r\n"));
        assert!(syntax(b"MAIL FROM:<a@x.test>SIZE=1\r\n"));
        assert!(syntax(b"MAIL TO:<a@x.test>\r\n"));
        assert!(syntax(b"MAIL FROM:<a@x.test> SIZE=abc\r\n"));
        assert!(syntax(
            b"MAIL FROM:<a@x.test> SIZE=99999999999999999999999\r\n"
        ));
        assert!(syntax(b"RCPT TO:<>\r\n"));
        assert!(syntax(b"RCPT TO:<a b@x.test>\r\n"));
        assert!(syntax(b"EHLO\r\n"));
        assert!(syntax(b"DATA now\r\n"));
        assert!(syntax(b"STARTTLS x\r\n"));
        assert!(syntax(b"AUTH\r\n"));
        assert!(syntax(b"MAIL FROM:<a\0@x.test>\r\n"), "NUL");
        assert!(syntax(b"EHLO a\rb\r\n"), "bare CR inside a command");
        assert!(syntax(b"EHLO \xff\xfe\r\n"), "not UTF-8");
        assert_eq!(parse_command(b"\r\n"), Err(CommandError::Unknown));
        assert_eq!(parse_command(b"XYZZY\r\n"), Err(CommandError::Unknown));
        assert_eq!(
            parse_command(b"MAIL FROM:<a@x.test> BODY=BINARYMIME\r\n"),
            Err(CommandError::UnsupportedParameter("BODY=BINARYMIME".into()))
        );
        assert_eq!(
            parse_command(b"RCPT TO:<a@x.test> NOTIFY=NEVER\r\n"),
            Err(CommandError::UnsupportedParameter("NOTIFY=NEVER".into()))
        );
    }

    #[test]
    fn enforces_line_limits() {
        let mut long = b"NOOP ".to_vec();
        long.resize(MAX_COMMAND_LINE - 1, b'x');
        long.extend_from_slice(b"\r\n");
        assert_eq!(parse_command(&long), Err(CommandError::LineTooLong));
        long.truncate(MAX_COMMAND_LINE - 3);
        assert_eq!(parse_command(&long), Ok(Command::Noop));
        // AUTH lines may be longer (RFC 4954 §4).
        let mut auth = b"AUTH PLAIN ".to_vec();
        auth.resize(2000, b'A');
        assert!(matches!(parse_command(&auth), Ok(Command::Auth { .. })));
        assert_eq!(CommandError::LineTooLong.reply().code(), 500);
    }
}
