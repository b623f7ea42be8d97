//! One user's console page (`/admin/users/edit?address=`): display name
//! and limits, class and leave date, enable, force logout, reset password,
//! and delete after a confirmation page that states the data-retention rule.
//!
//! Owns: nothing; every change goes through `directory::commands` and is
//! audited (`directory_routes::run`).
//!
//! Invariants:
//! - Reset password and delete ask for the admin's own password again,
//!   checked before anything changes; a wrong one is audited.
//! - A new password, force logout, disable and delete end the user's
//!   webmail session in the same request.
//! - Delete empties the mailbox (`mailbox::mailbox_removal`) while the
//!   account is disabled, and only then removes the record: a failure
//!   half way leaves a disabled account whose deletion can be repeated,
//!   never mail that nobody can reach.
//!
//! Reads untrusted input: the forms and query of a signed-in admin.

use super::directory_routes::{admin_password_ok, explain, field, link, query_value, run, Outcome};
use super::directory_views::{chrome, page, ConfirmPage, UserEditPage, UserView};
use super::pages::{self, Problem};
use super::{checked_form, Console, Ctx};
use crate::directory::address::normalize_address;
use crate::directory::commands::{parse_bytes_limit, parse_messages_limit, DirectoryCommand};
use crate::directory::user_admin::checked_display_name;
use crate::web::form::Form;
use crate::web::http::Reply;
use crate::web::session::Session;

/// A byte count exactly (as typed into the forms) and as people read it.
pub(super) fn bytes_text(n: u64) -> String {
    format!("{n} B ({})", crate::web::format::size(n))
}

/// `GET /admin/users/edit?address=`.
pub fn show(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let address = query_value(ctx, "address");
    render(console, ctx, session, address, None)
}

/// The page of `address`, with the outcome of an action above it.
fn render(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    address: &str,
    outcome: Option<Outcome>,
) -> Reply {
    let t = ctx.lang.catalog();
    let user = match console.directory.user(address) {
        Ok(Some(user)) => user,
        Ok(None) => {
            // A deleted (or mistyped) user: say so on the users page.
            let missing = crate::directory::DirectoryError::NoSuchUser(address.into());
            let (status, _, text) = explain(ctx, &missing, address);
            return users_page_failed(console, ctx, session, status, text);
        }
        Err(err) => {
            tracing::error!(%err, "directory failed reading a user");
            return pages::problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    let mut classes: Vec<String> = match console.directory.classes() {
        Ok(list) => list.into_iter().map(|c| c.name).collect(),
        Err(_) => Vec::new(),
    };
    for name in ["default", user.class.as_str()] {
        if !classes.iter().any(|c| c == name) {
            classes.insert(0, name.to_string());
        }
    }
    let (bytes, messages) = console.directory.limits_of(&user);
    let defaults = crate::mailbox::local_delivery::DefaultQuota {
        bytes: console.default_quota.0,
        messages: console.default_quota.1,
    }
    .as_set_in(&console.directory);
    let (default_bytes, default_messages) = (defaults.bytes, defaults.messages);
    let effective = |v: Option<u64>, default: u64, in_bytes: bool| match v.unwrap_or(default) {
        0 => t.get("cdir.no_limit").to_string(),
        n if in_bytes => bytes_text(n),
        n => n.to_string(),
    };
    let limits_text = t.fill(
        "cdir.limits_text",
        &[
            ("bytes", &effective(bytes, default_bytes, true)),
            ("messages", &effective(messages, default_messages, false)),
        ],
    );
    let usage_text = match console.store.usage(&user.address) {
        Ok(usage) => t.fill(
            "cdir.usage_text",
            &[
                ("bytes", &bytes_text(usage.bytes)),
                ("messages", &usage.messages.to_string()),
            ],
        ),
        Err(_) => String::new(),
    };
    let typed = |v: Option<u64>| match v {
        None => String::new(),
        Some(0) => "unlimited".to_string(),
        Some(n) => n.to_string(),
    };
    let created = chrono::DateTime::from_timestamp(user.created_at, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let view = UserView {
        state: t
            .get(if user.enabled {
                "console.state_enabled"
            } else {
                "console.state_disabled"
            })
            .to_string(),
        enabled: user.enabled,
        display_name: user.display_name.clone().unwrap_or_default(),
        class: user.class.clone(),
        classes,
        leave_date: user.leave_date.clone().unwrap_or_default(),
        quota_bytes: typed(user.quota_bytes),
        quota_messages: typed(user.quota_messages),
        limits_text,
        usage_text,
        created_text: t.fill("cdir.created_text", &[("date", &created)]),
        delete_href: link("/admin/users/delete", "address", &user.address),
        address: user.address,
    };
    let status = outcome.as_ref().map_or(200, Outcome::status);
    let (message, error) = outcome.map_or((None, None), Outcome::texts);
    page(
        status,
        &UserEditPage {
            t,
            chrome: chrome(ctx, "console.users_title", "/admin/users/edit", session),
            csrf_token: session.csrf_token.clone(),
            message,
            error,
            user: view,
        },
    )
}

fn users_page_with(console: &Console, ctx: &Ctx<'_>, session: &Session, done: String) -> Reply {
    super::users::render_outcome(
        console,
        ctx,
        session,
        super::users::Outcome::Done(done),
        200,
    )
}

fn users_page_failed(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    status: u16,
    text: String,
) -> Reply {
    super::users::render_outcome(
        console,
        ctx,
        session,
        super::users::Outcome::Failed(text),
        status,
    )
}

/// The checked form and its user's normalized address, or the reply.
fn form_and_address(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
) -> Result<(Form, String), Reply> {
    let form = checked_form(ctx, session)?;
    let t = ctx.lang.catalog();
    let address = field(&form, "address").unwrap_or("");
    if address.is_empty() {
        return Err(users_page_failed(
            console,
            ctx,
            session,
            400,
            t.get("console.err_missing_address").to_string(),
        ));
    }
    let address = normalize_address(address).unwrap_or_else(|| address.to_string());
    Ok((form, address))
}

/// `POST /admin/users/edit` (address, display_name, quota_bytes,
/// quota_messages): empty limits mean the class's (or configured) default.
pub fn save(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let (form, address) = match form_and_address(console, ctx, session) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let (Some(name), Some(bytes), Some(messages)) = (
        field(&form, "display_name"),
        field(&form, "quota_bytes"),
        field(&form, "quota_messages"),
    ) else {
        let failed = Outcome::Failed(400, t.get("console.err_too_long").to_string());
        return render(console, ctx, session, &address, Some(failed));
    };
    let limit = |v: &str| {
        if v.is_empty() {
            "default".to_string()
        } else {
            v.to_string()
        }
    };
    // Both limits and the name are checked before anything is saved, so a
    // typo in one leaves everything as it was.
    let checked = parse_bytes_limit(&limit(bytes))
        .and_then(|_| parse_messages_limit(&limit(messages)))
        .and_then(|_| checked_display_name(name));
    if let Err(err) = checked {
        let (status, code, text) = explain(ctx, &err, &address);
        console.audit(ctx, &session.user, "user_edit", &address, code);
        let failed = Outcome::Failed(status, text);
        return render(console, ctx, session, &address, Some(failed));
    }
    let steps = [
        (
            DirectoryCommand::UserSetName {
                address: address.clone(),
                display_name: name.to_string(),
            },
            "user_set_name",
        ),
        (
            DirectoryCommand::UserQuota {
                address: address.clone(),
                bytes: Some(limit(bytes)),
                messages: Some(limit(messages)),
            },
            "user_quota",
        ),
    ];
    for (command, action) in &steps {
        if let Err(failed) = run(console, ctx, session, command, action, &address) {
            return render(console, ctx, session, &address, Some(failed));
        }
    }
    let done = Outcome::Done(t.fill("cdir.user_saved", &[("address", &address)]));
    render(console, ctx, session, &address, Some(done))
}

/// `POST /admin/users/enable` (address).
pub fn enable(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let (_, address) = match form_and_address(console, ctx, session) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let command = DirectoryCommand::UserEnable {
        address: address.clone(),
    };
    let outcome = match run(console, ctx, session, &command, "user_enable", &address) {
        Ok(_) => Outcome::Done(t.fill("cdir.user_enabled", &[("address", &address)])),
        Err(failed) => failed,
    };
    render(console, ctx, session, &address, Some(outcome))
}

/// `POST /admin/users/logout` (address): ends the user's webmail session.
pub fn force_logout(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let (_, address) = match form_and_address(console, ctx, session) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let ended = console.mail_sessions.end_all_sessions_of(&address);
    let code = if ended {
        "ok_session_ended"
    } else {
        "ok_no_session"
    };
    console.audit(ctx, &session.user, "user_force_logout", &address, code);
    tracing::info!(admin = %session.user, user = %address, ended, "console ended a webmail session");
    let key = if ended {
        "cdir.logged_out"
    } else {
        "cdir.no_session"
    };
    let done = Outcome::Done(t.fill(key, &[("address", &address)]));
    render(console, ctx, session, &address, Some(done))
}

/// `POST /admin/users/password` (address, new_password, admin_password).
pub fn reset_password(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let (form, address) = match form_and_address(console, ctx, session) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let typed = form.get("admin_password").unwrap_or("");
    if let Err(failed) = admin_password_ok(
        console,
        ctx,
        session,
        typed,
        "user_reset_password",
        &address,
    ) {
        return render(console, ctx, session, &address, Some(failed));
    }
    let new_password = form.get("new_password").unwrap_or("");
    if new_password.is_empty() || new_password.len() > super::directory_routes::MAX_FIELD {
        let failed = Outcome::Failed(400, t.get("cdir.err_new_password").to_string());
        return render(console, ctx, session, &address, Some(failed));
    }
    let command = DirectoryCommand::UserPasswd {
        address: address.clone(),
        password: new_password.to_string(),
    };
    let outcome = match run(
        console,
        ctx,
        session,
        &command,
        "user_reset_password",
        &address,
    ) {
        Ok(_) => {
            // Whoever knew the old password loses the session it opened.
            console.mail_sessions.end_all_sessions_of(&address);
            Outcome::Done(t.fill("cdir.password_reset", &[("address", &address)]))
        }
        Err(failed) => failed,
    };
    render(console, ctx, session, &address, Some(outcome))
}

/// `POST /admin/users/class` (address, class, leave_date).
pub fn set_class(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let (form, address) = match form_and_address(console, ctx, session) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let (Some(class), Some(leave)) = (field(&form, "class"), field(&form, "leave_date")) else {
        let failed = Outcome::Failed(400, t.get("console.err_too_long").to_string());
        return render(console, ctx, session, &address, Some(failed));
    };
    let command = DirectoryCommand::UserSetClass {
        address: address.clone(),
        class: class.to_string(),
        leave_date: Some(leave.to_string()),
    };
    let outcome = match run(console, ctx, session, &command, "user_set_class", &address) {
        Ok(_) => {
            Outcome::Done(t.fill("cdir.class_set", &[("address", &address), ("class", class)]))
        }
        Err(failed) => failed,
    };
    render(console, ctx, session, &address, Some(outcome))
}

/// The confirmation page of a delete, stating what happens to the mail.
fn confirm_page(
    ctx: &Ctx<'_>,
    session: &Session,
    address: &str,
    status: u16,
    error: Option<String>,
) -> Reply {
    let t = ctx.lang.catalog();
    page(
        status,
        &ConfirmPage {
            t,
            chrome: chrome(ctx, "cdir.delete_heading", "/admin/users/delete", session),
            csrf_token: session.csrf_token.clone(),
            heading: t.fill("cdir.delete_confirm_heading", &[("address", address)]),
            lead: t.fill("cdir.delete_lead", &[("address", address)]),
            retention: Some(t.get("cdir.delete_retention").to_string()),
            action: "/admin/users/delete".into(),
            hidden: vec![("address".into(), address.to_string())],
            ask_password: true,
            submit: t.get("cdir.delete_user").to_string(),
            cancel_href: link("/admin/users/edit", "address", address),
            error,
        },
    )
}

/// `GET /admin/users/delete?address=`: the confirmation page.
pub fn confirm_delete(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let address = query_value(ctx, "address");
    match console.directory.user(address) {
        Ok(Some(user)) => confirm_page(ctx, session, &user.address, 200, None),
        Ok(None) => render(console, ctx, session, address, None),
        Err(err) => {
            tracing::error!(%err, "directory failed reading a user");
            pages::problem(ctx.lang, Problem::Internal, Some(session))
        }
    }
}

/// `POST /admin/users/delete` (address, confirm=yes, admin_password).
pub fn delete(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let (form, address) = match form_and_address(console, ctx, session) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    if form.get("confirm") != Some("yes") {
        return confirm_page(
            ctx,
            session,
            &address,
            400,
            Some(t.get("cdir.err_confirm").to_string()),
        );
    }
    let typed = form.get("admin_password").unwrap_or("");
    if let Err(Outcome::Failed(status, text)) =
        admin_password_ok(console, ctx, session, typed, "user_delete", &address)
    {
        return confirm_page(ctx, session, &address, status, Some(text));
    }
    // 1. No new mail, no login, no open session from here on.
    let disable = DirectoryCommand::UserDisable {
        address: address.clone(),
    };
    if let Err(failed) = run(console, ctx, session, &disable, "user_disable", &address) {
        return render(console, ctx, session, &address, Some(failed));
    }
    console.mail_sessions.end_all_sessions_of(&address);
    // 2. The mailbox, emptied for good (on both nodes, through the log).
    let removed = match crate::mailbox::mailbox_removal::empty_mailbox(&console.store, &address) {
        Ok(n) => n,
        Err(err) => {
            tracing::error!(%err, user = %address, "emptying a deleted user's mailbox failed");
            console.audit(ctx, &session.user, "user_delete", &address, "mailbox_error");
            let failed = Outcome::Failed(503, t.get("cdir.err_mailbox").to_string());
            return render(console, ctx, session, &address, Some(failed));
        }
    };
    // 3. The record.
    let command = DirectoryCommand::UserDelete {
        address: address.clone(),
    };
    match run(console, ctx, session, &command, "user_delete", &address) {
        Ok(_) => {
            let done = t.fill(
                "cdir.user_deleted",
                &[("address", &address), ("count", &removed.to_string())],
            );
            users_page_with(console, ctx, session, done)
        }
        Err(failed) => render(console, ctx, session, &address, Some(failed)),
    }
}
