//! `POST /mail/actions`: what the message list's checkboxes and the message
//! view's buttons do: move, delete (to Trash; from Trash for good), mark
//! read or unread, flag or unflag.
//!
//! Owns: the mapping from a button to store calls, and where the browser
//! goes afterwards (back to the same list page, folder and sort, or to the
//! message when it is still where it was).
//!
//! Invariants:
//! - The CSRF token is checked before any field is acted on.
//! - Every store call passes the session's user: ids of other users'
//!   messages are skipped by the store, like unknown ones.
//! - The way back is rebuilt from checked fields (`ListQuery`, a message
//!   id), never taken from the form as a URL, so it cannot lead off-site.
//!
//! Reads untrusted input: yes, the form (ids, action, target, list fields).

use std::str::FromStr;

use super::list_query::ListQuery;
use super::pages::{self, message_href, Problem};
use super::{Ctx, Webmail};
use crate::store::{Flag, MessageId, StoreError};
use crate::web::csrf;
use crate::web::http::Reply;
use crate::web::session::Session;

/// Most messages one action takes (the largest page is 500).
pub const MAX_SELECTED: usize = 500;

/// What a button asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Move,
    Delete,
    Flag(Flag, bool),
}

fn action_of(text: &str) -> Option<Action> {
    Some(match text {
        "move" => Action::Move,
        "delete" => Action::Delete,
        "read" => Action::Flag(Flag::Seen, true),
        "unread" => Action::Flag(Flag::Seen, false),
        "flag" => Action::Flag(Flag::Flagged, true),
        "unflag" => Action::Flag(Flag::Flagged, false),
        _ => return None,
    })
}

/// `POST /mail/actions`.
pub fn submit(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match ctx.req.body_form_repeating(&["m"], MAX_SELECTED) {
        Ok(form) => form,
        Err(err) => return super::form_problem(ctx.lang, &err),
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        return pages::problem(ctx.lang, Problem::FormExpired, None);
    }
    let Some(action) = form.get("action").and_then(action_of) else {
        return pages::problem(ctx.lang, Problem::BadRequest, None);
    };
    let Some(list) = ListQuery::from_fields(|k| form.get(k)) else {
        return pages::problem(ctx.lang, Problem::BadRequest, None);
    };
    let ids: Option<Vec<MessageId>> = form.all("m").map(|m| MessageId::from_str(m).ok()).collect();
    let Some(ids) = ids else {
        return pages::problem(ctx.lang, Problem::BadRequest, None);
    };
    // The message view sends its own id as `view`.
    let view = match form.get("view").map(MessageId::from_str) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return pages::problem(ctx.lang, Problem::BadRequest, None),
    };
    let back = |done: &str, n: usize| {
        let href = list.href(list.page);
        let sep = if href.contains('?') { '&' } else { '?' };
        Reply::see_other(&format!("{href}{sep}done={done}&n={n}"))
    };
    if ids.is_empty() {
        return back("none", 0);
    }
    let store = &webmail.store;
    let user = &session.user;
    let result: Result<Reply, StoreError> = (|| {
        Ok(match action {
            Action::Move => {
                let target = form.get("target").unwrap_or("");
                if !store.folder_exists(user, target)? {
                    return Ok(pages::problem(ctx.lang, Problem::NotFound, None));
                }
                back("move", store.move_messages(user, &ids, target)?)
            }
            Action::Delete => {
                let (trashed, gone) = store.delete_messages(user, &ids)?;
                if gone > 0 {
                    back("delete", gone + trashed)
                } else {
                    back("trash", trashed)
                }
            }
            Action::Flag(flag, value) => {
                let n = store.set_flags(user, &ids, flag, value)?;
                // From the message view, flagging stays on the message;
                // marking it unread goes back to the list.
                match (&view, flag) {
                    (Some(id), Flag::Flagged) => Reply::see_other(&message_href(&id.to_string())),
                    _ => {
                        let done = match (flag, value) {
                            (Flag::Seen, true) => "read",
                            (Flag::Seen, false) => "unread",
                            (_, true) => "flag",
                            (_, false) => "unflag",
                        };
                        back(done, n)
                    }
                }
            }
        })
    })();
    match result {
        Ok(reply) => reply,
        Err(err) => {
            tracing::error!(%err, "message action failed");
            pages::problem(ctx.lang, Problem::Internal, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_actions() {
        assert_eq!(action_of("move"), Some(Action::Move));
        assert_eq!(action_of("unread"), Some(Action::Flag(Flag::Seen, false)));
        assert_eq!(action_of("expunge"), None);
        assert_eq!(action_of(""), None);
    }
}
