//! The console's user pages: search, create, disable (one user's own page
//! is `user_edit.rs`).
//!
//! Owns: the translation of directory outcomes into plain-words messages
//! on the page and short codes in the audit log.
//!
//! Invariants:
//! - Changes go through `directory::commands::execute`, like the CLI.
//! - A disabled user's webmail session is ended in the same request, so
//!   "disabled" on the page means no open browser keeps reading mail.
//! - At most `SHOWN_USERS` rows are rendered, with a note when more match.
//! - The password field is passed on, never echoed, logged or audited.
//!
//! Reads untrusted input: the search text and the forms (address,
//! password), both from a signed-in admin.

use super::pages::{self, UserRow, UsersView};
use super::{checked_form, Console, Ctx};
use crate::directory::address::normalize_address;
use crate::directory::commands::{execute, DirectoryCommand};
use crate::directory::password::{PasswordError, MIN_PASSWORD_CHARS};
use crate::directory::DirectoryError;
use crate::web::http::Reply;
use crate::web::session::Session;

/// Most users one page shows.
pub const SHOWN_USERS: usize = 200;
/// Longest search text, address or password accepted.
const MAX_FIELD: usize = 1024;

/// The message above the list after a create or disable.
pub enum Outcome {
    Done(String),
    Failed(String),
}

/// `GET /admin/users?q=`.
pub fn list(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let query = ctx.query.get("q").unwrap_or("");
    render(console, ctx, session, query, "", None)
}

/// The users page (every user) with the outcome of a change made elsewhere.
pub(super) fn render_outcome(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    outcome: Outcome,
    status: u16,
) -> Reply {
    render(console, ctx, session, "", "", Some((status, outcome)))
}

/// The users page: the matching users and, after a change, its outcome.
fn render(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    query: &str,
    address: &str,
    outcome: Option<(u16, Outcome)>,
) -> Reply {
    let t = ctx.lang.catalog();
    let query: String = query.chars().take(MAX_FIELD).collect();
    let (users, matched) = match console.directory.search_users(&query, SHOWN_USERS) {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(%err, "directory failed listing users");
            return pages::problem(ctx.lang, pages::Problem::Internal, Some(session));
        }
    };
    let rows = users
        .into_iter()
        .map(|u| UserRow {
            state: t
                .get(if u.enabled {
                    "console.state_enabled"
                } else {
                    "console.state_disabled"
                })
                .to_string(),
            enabled: u.enabled,
            class: u.class,
            display_name: u.display_name.unwrap_or_default(),
            edit_href: super::directory_routes::link("/admin/users/edit", "address", &u.address),
            address: u.address,
        })
        .collect();
    let count = matched.to_string();
    let more_text = (matched > SHOWN_USERS).then(|| {
        t.fill(
            "console.users_more",
            &[("count", &count), ("shown", &SHOWN_USERS.to_string())],
        )
    });
    let (status, message, error) = match outcome {
        None => (200, None, None),
        Some((status, Outcome::Done(text))) => (status, Some(text), None),
        Some((status, Outcome::Failed(text))) => (status, None, Some(text)),
    };
    let view = UsersView {
        query,
        rows,
        count_text: t.fill("console.users_count", &[("count", &count)]),
        more_text,
        message,
        error,
        address: address.to_string(),
        classes: std::iter::once("default".to_string())
            .chain(
                console
                    .directory
                    .classes()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| c.name),
            )
            .collect(),
    };
    pages::users(ctx, session, status, view)
}

/// `POST /admin/users` (address, password): creates a user.
pub fn create(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let address = form.get("address").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    if address.is_empty() || password.is_empty() {
        let failed = Outcome::Failed(t.get("console.err_missing").to_string());
        return render(console, ctx, session, "", address, Some((400, failed)));
    }
    if address.len() > MAX_FIELD || password.len() > MAX_FIELD {
        let failed = Outcome::Failed(t.get("console.err_too_long").to_string());
        return render(console, ctx, session, "", "", Some((400, failed)));
    }
    let target = normalize_address(address).unwrap_or_else(|| address.to_string());
    let command = DirectoryCommand::UserAdd {
        address: address.to_string(),
        password: password.to_string(),
    };
    match execute(&console.directory, &command) {
        Ok(_) => {
            console.audit(ctx, &session.user, "user_create", &target, "ok");
            tracing::info!(admin = %session.user, user = %target, "console created a user");
            // The optional name and class, like the user's own page sets them.
            let name = form.get("display_name").unwrap_or("").trim();
            let class = form.get("class").unwrap_or("").trim();
            let mut steps = Vec::new();
            if !name.is_empty() {
                let set = DirectoryCommand::UserSetName {
                    address: target.clone(),
                    display_name: name.to_string(),
                };
                steps.push((set, "user_set_name"));
            }
            if !class.is_empty() && class != "default" {
                let set = DirectoryCommand::UserSetClass {
                    address: target.clone(),
                    class: class.to_string(),
                    leave_date: None,
                };
                steps.push((set, "user_set_class"));
            }
            for (command, action) in &steps {
                if let Err(super::directory_routes::Outcome::Failed(status, text)) =
                    super::directory_routes::run(console, ctx, session, command, action, &target)
                {
                    return render(
                        console,
                        ctx,
                        session,
                        &target,
                        "",
                        Some((status, Outcome::Failed(text))),
                    );
                }
            }
            let done = Outcome::Done(t.fill("console.user_created", &[("address", &target)]));
            render(console, ctx, session, &target, "", Some((200, done)))
        }
        Err(err) => {
            let (status, code, text) = explain(ctx, &err, &target);
            console.audit(ctx, &session.user, "user_create", &target, code);
            render(
                console,
                ctx,
                session,
                "",
                address,
                Some((status, Outcome::Failed(text))),
            )
        }
    }
}

/// `POST /admin/users/disable` (address): disables a user and ends their
/// live webmail session.
pub fn disable(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let address = form.get("address").unwrap_or("").trim();
    if address.is_empty() || address.len() > MAX_FIELD {
        let failed = Outcome::Failed(t.get("console.err_missing_address").to_string());
        return render(console, ctx, session, "", "", Some((400, failed)));
    }
    let target = normalize_address(address).unwrap_or_else(|| address.to_string());
    let command = DirectoryCommand::UserDisable {
        address: target.clone(),
    };
    match execute(&console.directory, &command) {
        Ok(_) => {
            // The directory refuses new logins from now on; end the one
            // that may still be open.
            let ended = console.mail_sessions.end_all_sessions_of(&target);
            let code = if ended { "ok_session_ended" } else { "ok" };
            console.audit(ctx, &session.user, "user_disable", &target, code);
            tracing::info!(admin = %session.user, user = %target, ended, "console disabled a user");
            let mut text = t.fill("console.user_disabled", &[("address", &target)]);
            if ended {
                text.push(' ');
                text.push_str(t.get("console.session_ended"));
            }
            render(
                console,
                ctx,
                session,
                &target,
                "",
                Some((200, Outcome::Done(text))),
            )
        }
        Err(err) => {
            let (status, code, text) = explain(ctx, &err, &target);
            console.audit(ctx, &session.user, "user_disable", &target, code);
            render(
                console,
                ctx,
                session,
                "",
                "",
                Some((status, Outcome::Failed(text))),
            )
        }
    }
}

/// Status, audit code and plain-words message for a directory failure.
fn explain(ctx: &Ctx<'_>, err: &DirectoryError, address: &str) -> (u16, &'static str, String) {
    let t = ctx.lang.catalog();
    match err {
        DirectoryError::BadAddress(_) => (
            400,
            "bad_address",
            t.fill("console.err_bad_address", &[("address", address)]),
        ),
        DirectoryError::UnknownDomain(domain) => (
            400,
            "unknown_domain",
            t.fill("console.err_unknown_domain", &[("domain", domain)]),
        ),
        DirectoryError::AddressTaken(_) => (
            409,
            "address_taken",
            t.fill("console.err_taken", &[("address", address)]),
        ),
        DirectoryError::NoSuchUser(_) => (
            404,
            "no_such_user",
            t.fill("console.err_no_such_user", &[("address", address)]),
        ),
        DirectoryError::Password(PasswordError::TooShort) => (
            400,
            "password_too_short",
            t.fill(
                "console.err_password_short",
                &[("min", &MIN_PASSWORD_CHARS.to_string())],
            ),
        ),
        other => {
            tracing::error!(err = %other, "directory failed during a console change");
            (
                503,
                "directory_error",
                t.get("console.err_directory").to_string(),
            )
        }
    }
}
