//! SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, on
//! the submission ports only and only over TLS.
//!
//! Owns: the SASL exchange of one AUTH command; the login it yields is kept
//! in the session.
//!
//! Invariants:
//! - No AUTH on the MX port; no AUTH before TLS (538, RFC 4954 §4); AUTH
//!   needs EHLO first and is refused during a transaction or once logged in.
//! - Bad credentials and a disabled account get the same reply (535 5.7.8),
//!   so a peer cannot probe which accounts exist; the log tells them apart.
//! - Who the credentials let the session act as is decided in
//!   `authorize.rs` (PLAIN's authorization identity, the webmail's service
//!   login); this file only runs the exchange.
//! - Passwords are never logged and never leave this file except to the
//!   directory's password check (run off the executor: it is slow on purpose).
//!
//! Reads untrusted input: yes, SASL responses from the peer.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::authorize::{authorize, Credentials, Decision};
use super::command::MAX_AUTH_LINE;
use super::connection::{ConnError, Connection, Line};
use super::reply::Reply;
use super::session::{Phase, Session, Step};

impl Session {
    /// AUTH <mechanism> [initial-response].
    pub(super) async fn auth(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
        conn: &mut Connection,
    ) -> Result<Step, ConnError> {
        let refuse = |code, status, text: &str| Ok(Step::Reply(Reply::new(code, status, text)));
        if !self.port.is_submission() {
            return refuse(
                502,
                "5.5.1",
                "Error: AUTH is not offered on this port; use the submission port",
            );
        }
        if !self.tls {
            return refuse(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        match &self.phase {
            Phase::Greeted(helo) if helo.extended => {}
            Phase::Transaction(..) => {
                return refuse(
                    503,
                    "5.5.1",
                    "Error: AUTH not allowed during a mail transaction",
                )
            }
            _ => return refuse(503, "5.5.1", "Error: send EHLO first"),
        }
        if self.login.is_some() {
            return refuse(503, "5.5.1", "Error: already authenticated");
        }
        let exchange = match mechanism {
            "PLAIN" => plain_exchange(initial, conn).await?,
            "LOGIN" => login_exchange(initial, conn).await?,
            _ => return refuse(504, "5.5.4", "Unrecognized authentication type"),
        };
        let credentials = match exchange {
            Ok(c) => c,
            Err(reply) => return Ok(Step::Reply(reply)),
        };
        let snapshot = self.ctx.directory.current();
        let service = self.ctx.service.clone();
        let login = credentials.login.clone();
        let authzid = credentials.authzid.clone().unwrap_or_default();
        let decision =
            smol::unblock(move || authorize(&snapshot, service.as_ref(), &credentials)).await;
        let port = self.port.name();
        Ok(Step::Reply(match decision {
            Decision::Accepted { user, via_service } => {
                tracing::info!(peer = %self.peer, port, login = %login, user = %user, via_service, "AUTH succeeded");
                self.login = Some(user);
                self.via_service = via_service;
                Reply::new(235, "2.7.0", "Authentication successful")
            }
            Decision::Refused(why) => {
                tracing::warn!(peer = %self.peer, port, login = %login, authzid = %authzid,
                    reason = why.as_str(), "AUTH failed");
                Reply::new(535, "5.7.8", "Authentication credentials invalid")
            }
        }))
    }
}

/// The outcome of a SASL exchange: credentials, or the reply that ends it.
type Exchange = Result<Credentials, Reply>;

async fn plain_exchange(
    initial: Option<String>,
    conn: &mut Connection,
) -> Result<Exchange, ConnError> {
    let response = match initial {
        Some(text) => decode(&text),
        None => challenge(conn, "").await?,
    };
    Ok(response.and_then(|bytes| {
        decode_plain(&bytes)
            .ok_or_else(|| Reply::new(535, "5.7.8", "Authentication credentials invalid"))
    }))
}

async fn login_exchange(
    initial: Option<String>,
    conn: &mut Connection,
) -> Result<Exchange, ConnError> {
    let user = match initial {
        Some(text) => decode(&text),
        None => challenge(conn, "Username:").await?,
    };
    let user = match user.and_then(utf8) {
        Ok(user) => user,
        Err(reply) => return Ok(Err(reply)),
    };
    let password = challenge(conn, "Password:").await?.and_then(utf8);
    Ok(password.map(|password| Credentials {
        authzid: None,
        login: user,
        password,
    }))
}

/// Sends a 334 challenge and reads the decoded response.
async fn challenge(
    conn: &mut Connection,
    prompt: &str,
) -> Result<Result<Vec<u8>, Reply>, ConnError> {
    conn.queue(&Reply::bare(334, BASE64.encode(prompt)));
    let line = match conn.read_line(MAX_AUTH_LINE).await? {
        Line::Complete(line) => line,
        // RFC 4954 §4: 500 5.5.6 for an overlong exchange line.
        Line::TooLong => {
            return Ok(Err(Reply::new(
                500,
                "5.5.6",
                "Authentication Exchange line is too long",
            )))
        }
    };
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line == b"*" {
        return Ok(Err(Reply::new(501, "5.0.0", "Authentication cancelled")));
    }
    Ok(std::str::from_utf8(line)
        .map_err(|_| bad_base64())
        .and_then(decode))
}

fn decode(text: &str) -> Result<Vec<u8>, Reply> {
    BASE64.decode(text.trim()).map_err(|_| bad_base64())
}

fn bad_base64() -> Reply {
    Reply::new(501, "5.5.2", "Cannot decode the response (base64 expected)")
}

fn utf8(bytes: Vec<u8>) -> Result<String, Reply> {
    String::from_utf8(bytes)
        .map_err(|_| Reply::new(535, "5.7.8", "Authentication credentials invalid"))
}

/// `[authzid] NUL authcid NUL passwd` (RFC 4616 §2). Whether the login
/// may act as the authorization identity is `authorize`'s decision.
pub(super) fn decode_plain(bytes: &[u8]) -> Option<Credentials> {
    let mut parts = bytes.split(|&b| b == 0);
    let (authzid, authcid, passwd) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || passwd.is_empty() {
        return None;
    }
    let authzid = match authzid {
        [] => None,
        some => Some(String::from_utf8(some.to_vec()).ok()?),
    };
    Some(Credentials {
        authzid,
        login: String::from_utf8(authcid.to_vec()).ok()?,
        password: String::from_utf8(passwd.to_vec()).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_sasl_plain() {
        let creds = |authzid: Option<&str>, login: &str, password: &str| {
            Some(Credentials {
                authzid: authzid.map(str::to_string),
                login: login.into(),
                password: password.into(),
            })
        };
        assert_eq!(
            decode_plain(b"\0alice@campus.test\0pw"),
            creds(None, "alice@campus.test", "pw")
        );
        assert_eq!(
            decode_plain(b"a@x.test\0a@x.test\0pw"),
            creds(Some("a@x.test"), "a@x.test", "pw")
        );
        // Another authorization identity is carried to `authorize`, which
        // refuses it for anyone but the webmail's service login.
        assert_eq!(
            decode_plain(b"other\0a\0pw"),
            creds(Some("other"), "a", "pw")
        );
        for bad in [
            &b""[..],
            b"\0\0",
            b"\0a\0",
            b"\0\0pw",
            b"\0a\0pw\0x",
            b"\0\xff\0pw",
            b"\xff\0a\0pw",
        ] {
            assert_eq!(decode_plain(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_errors_have_their_own_reply() {
        assert_eq!(decode("AGEAYg==").unwrap(), b"\0a\0b");
        assert_eq!(decode("not base64!").unwrap_err().code(), 501);
    }
}
