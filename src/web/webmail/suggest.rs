//! `GET /mail/suggest?q=TEXT`: address suggestions as JSON for the compose
//! form's script (`static/suggest.js`), which fills the recipient fields'
//! `<datalist>` as the user types. Without the script the form still has
//! the list the server filled (address book and collected addresses).
//!
//! Invariants:
//! - Behind the session gate like every mail page (no session: redirect
//!   to the login page, no data); the answer holds only the user's own
//!   address book and collected addresses and, for two characters or
//!   more, enabled campus users' addresses and display names, which any
//!   signed-in user may look up (the same as typing the address).
//! - Read only; a GET changes nothing, so it needs no CSRF token. The
//!   reply is JSON with `nosniff` and `no-store` (`Reply::finish`).
//!
//! Reads untrusted input: the query text (at most `MAX_QUERY` characters,
//! compared only as a substring).

use super::{Ctx, Webmail};
use crate::web::http::Reply;
use crate::web::session::Session;

pub const PATH: &str = "/mail/suggest";
/// Longest query looked up.
const MAX_QUERY: usize = 100;
/// Suggestions per answer.
const LIMIT: usize = 10;

/// The suggestions for `q`, as a JSON array of {value, name, address}.
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let query: String = ctx
        .query
        .get("q")
        .unwrap_or("")
        .chars()
        .take(MAX_QUERY)
        .collect();
    let found = match webmail.directory.suggestions(&session.user, &query, LIMIT) {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(%err, "suggestions failed");
            return json(500, "[]".to_string());
        }
    };
    match serde_json::to_string(&found) {
        Ok(body) => json(200, body),
        Err(err) => {
            tracing::error!(%err, "suggestions not encoded");
            json(500, "[]".to_string())
        }
    }
}

fn json(status: u16, body: String) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type", "application/json; charset=utf-8".into())],
        body: body.into_bytes(),
    }
}
