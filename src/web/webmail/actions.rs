//! `POST /mail/actions`: what the message list's checkboxes, the grouped
//! list's checkboxes and the message view's buttons do: move, delete (to
//! Trash; from Trash for good), mark read or unread, flag or unflag.
//!
//! Owns: the mapping from a button to store calls, the expansion of ticked
//! conversations (`c`, each named by one of its messages) into their
//! messages in the folder shown (`Store::conversation_members`; the
//! conversation's messages in other folders stay put, as in Gmail), and
//! where the browser goes afterwards (back to the same list page, folder,
//! sort and view, or to the message when it is still where it was).
//!
//! Invariants:
//! - The CSRF token is checked before any field is acted on.
//! - Every store call passes the session's user: ids of other users'
//!   messages are skipped by the store, like unknown ones, and a
//!   conversation named by another user's message expands to nothing.
//! - One action touches at most `MAX_SELECTED` messages, conversations
//!   expanded; more is refused whole, with a page saying so.
//! - The way back is rebuilt from checked fields (`ListQuery`, a message
//!   id), never taken from the form as a URL, so it cannot lead off-site.
//!
//! Reads untrusted input: yes, the form (ids, conversation keys, action,
//! target, list fields).

use std::collections::HashSet;
use std::str::FromStr;

use super::list_query::{ListQuery, ListView};
use super::pages::{self, message_href, Problem};
use super::{Ctx, Webmail};
use crate::store::{Flag, MessageId, StoreError};
use crate::web::csrf;
use crate::web::http::Reply;
use crate::web::session::Session;

/// Most messages one action takes (the largest page is 500), counting
/// every message of the ticked conversations.
pub const MAX_SELECTED: usize = 500;

/// The ticked messages and, after them, the messages of the ticked
/// conversations (`members_of(key, limit)` lists at most `limit` of the
/// conversation of `key`, a message of the folder, or nothing), each
/// once; `None` when they are more than `MAX_SELECTED`. A key already
/// gathered from an earlier conversation names that one again and is
/// skipped, so each conversation is listed once and the work stays
/// bounded by the cap whatever the form holds.
fn gather(
    ids: Vec<MessageId>,
    keys: &[MessageId],
    mut members_of: impl FnMut(&MessageId, usize) -> Result<Vec<MessageId>, StoreError>,
) -> Result<Option<Vec<MessageId>>, StoreError> {
    let mut seen: HashSet<MessageId> = HashSet::new();
    let mut out: Vec<MessageId> = ids
        .into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect();
    let mut listed: HashSet<MessageId> = HashSet::new();
    for key in keys {
        if listed.contains(key) {
            continue;
        }
        // One more than the cap, so "too many" shows without listing all.
        for id in members_of(key, MAX_SELECTED + 1)? {
            listed.insert(id.clone());
            if seen.insert(id.clone()) {
                out.push(id);
            }
        }
        if out.len() > MAX_SELECTED {
            return Ok(None);
        }
    }
    Ok((out.len() <= MAX_SELECTED).then_some(out))
}

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
    let form = match ctx.req.body_form_repeating(&["m", "c"], MAX_SELECTED) {
        Ok(form) => form,
        Err(err) => return super::form_problem(ctx.lang, &err),
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        return pages::problem(ctx.lang, Problem::FormExpired, None);
    }
    let Some(action) = form.get("action").and_then(action_of) else {
        return pages::problem(ctx.lang, Problem::BadRequest, None);
    };
    // The list's view travels as `list_view`: `view` is the message
    // view's own id.
    let fields = |k: &str| form.get(if k == "view" { "list_view" } else { k });
    let Some(list) = ListQuery::from_fields(fields) else {
        return pages::problem(ctx.lang, Problem::BadRequest, None);
    };
    let parse_all = |name: &str| -> Option<Vec<MessageId>> {
        form.all(name)
            .map(|m| MessageId::from_str(m).ok())
            .collect()
    };
    let (Some(ids), Some(conversations)) = (parse_all("m"), parse_all("c")) else {
        return pages::problem(ctx.lang, Problem::BadRequest, None);
    };
    // The message view sends its own id as `view`.
    let view = match form.get("view").map(MessageId::from_str) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return pages::problem(ctx.lang, Problem::BadRequest, None),
    };
    let back = |done: &str, n: usize| {
        let href = match list.view {
            Some(ListView::Conversations) => {
                super::conversation_list::href(&list.folder, list.descending, list.page)
            }
            _ => list.href(list.page),
        };
        let sep = if href.contains('?') { '&' } else { '?' };
        Reply::see_other(&format!("{href}{sep}done={done}&n={n}"))
    };
    let store = &webmail.store;
    let user = &session.user;
    let result: Result<Reply, StoreError> = (|| {
        let ids = if conversations.is_empty() {
            ids
        } else {
            // Conversations act in the folder shown, which must be theirs.
            if !store.folder_exists(user, &list.folder)? {
                return Ok(pages::problem(ctx.lang, Problem::NotFound, None));
            }
            let members = |key: &MessageId, room: usize| {
                store.conversation_members(user, &list.folder, key, room)
            };
            match gather(ids, &conversations, members)? {
                Some(ids) => ids,
                None => return Ok(too_many(ctx)),
            }
        };
        if ids.is_empty() {
            return Ok(back("none", 0));
        }
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

/// The page refusing an action on more than `MAX_SELECTED` messages.
fn too_many(ctx: &Ctx<'_>) -> Reply {
    let t = ctx.lang.catalog();
    let message = t.fill("actions.too_many", &[("max", &MAX_SELECTED.to_string())]);
    pages::problem_saying(ctx.lang, Problem::TooLarge, message, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> MessageId {
        MessageId::from_str(&format!("node-a.{n}")).unwrap()
    }

    #[test]
    fn conversations_expand_to_their_members_once_and_within_the_cap() {
        // Conversation k holds messages k*1000 .. k*1000 + k (k of them),
        // and k*1000 names it too.
        let members = |key: &MessageId, limit: usize| {
            let n = key.to_string()[7..].parse::<u64>().unwrap();
            let k = if n >= 1000 { n / 1000 } else { n };
            Ok((0..k).map(|i| id(k * 1000 + i)).take(limit).collect())
        };
        let got = gather(vec![id(1000), id(5)], &[id(2), id(1)], members).unwrap();
        assert_eq!(got, Some(vec![id(1000), id(5), id(2000), id(2001)]));
        assert_eq!(gather(vec![], &[], members).unwrap(), Some(vec![]));
        // 500 fit; 501 do not.
        let n = gather(vec![], &[id(500)], members)
            .unwrap()
            .map(|v| v.len());
        assert_eq!(n, Some(500));
        assert_eq!(gather(vec![id(1)], &[id(500)], members).unwrap(), None);
        assert_eq!(gather(vec![], &[id(400), id(101)], members).unwrap(), None);
        // A conversation named twice is listed once.
        let mut asked = Vec::new();
        let spy = |key: &MessageId, limit: usize| {
            asked.push((key.clone(), limit));
            members(key, limit)
        };
        let got = gather(vec![], &[id(3000), id(3001), id(3002)], spy).unwrap();
        assert_eq!(got.map(|v| v.len()), Some(3));
        assert_eq!(asked, vec![(id(3000), 501)]);
    }

    #[test]
    fn only_known_actions() {
        assert_eq!(action_of("move"), Some(Action::Move));
        assert_eq!(action_of("unread"), Some(Action::Flag(Flag::Seen, false)));
        assert_eq!(action_of("expunge"), None);
        assert_eq!(action_of(""), None);
    }
}
