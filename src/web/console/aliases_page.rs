//! The console's aliases and groups (`/admin/aliases`): an alias delivers
//! to one or more local users; a group (distribution or department list)
//! is an alias with many members. Add one with its members, add and remove
//! members, remove one after a confirmation page.
//!
//! Owns: nothing; changes go through `directory::commands` and are audited.
//!
//! Invariants: members are typed one per line (or separated by commas);
//! at most `MAX_TYPED_MEMBERS` per form, each checked by the directory.
//!
//! Reads untrusted input: the forms and query of a signed-in admin.

use super::directory_routes::{field, link, query_value, run, Outcome};
use super::directory_views::{chrome, page, AliasEditPage, AliasRow, AliasesPage, ConfirmPage};
use super::pages::{self, Problem};
use super::{checked_form, Console, Ctx};
use crate::directory::address::normalize_address;
use crate::directory::commands::DirectoryCommand;
use crate::web::http::Reply;
use crate::web::session::Session;

/// Most members one form may name (more go in several steps or by CLI).
const MAX_TYPED_MEMBERS: usize = 1000;
/// Members named in the list's preview column.
const PREVIEW: usize = 3;

/// The addresses in a members field: one per line or comma separated.
fn members_of(text: &str) -> Vec<String> {
    text.split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// `GET /admin/aliases`.
pub fn show(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    render(console, ctx, session, ("", ""), None)
}

fn render(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    typed: (&str, &str),
    outcome: Option<Outcome>,
) -> Reply {
    let t = ctx.lang.catalog();
    let aliases = match console.directory.aliases() {
        Ok(aliases) => aliases,
        Err(err) => {
            tracing::error!(%err, "directory failed listing aliases");
            return pages::problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    let rows = aliases
        .into_iter()
        .map(|(alias, members)| {
            let mut preview = members
                .iter()
                .take(PREVIEW)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if members.len() > PREVIEW {
                preview.push_str(", …");
            }
            AliasRow {
                count_text: t.fill(
                    "cdir.member_count",
                    &[("count", &members.len().to_string())],
                ),
                preview,
                edit_href: link("/admin/aliases/edit", "alias", &alias),
                remove_href: link("/admin/aliases/remove", "alias", &alias),
                alias,
            }
        })
        .collect();
    let status = outcome.as_ref().map_or(200, Outcome::status);
    let (message, error) = outcome.map_or((None, None), Outcome::texts);
    page(
        status,
        &AliasesPage {
            t,
            chrome: chrome(ctx, "cdir.aliases_title", "/admin/aliases", session),
            csrf_token: session.csrf_token.clone(),
            message,
            error,
            rows,
            typed_alias: typed.0.to_string(),
            typed_members: typed.1.to_string(),
        },
    )
}

/// `POST /admin/aliases` (alias, members).
pub fn add(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let alias = field(&form, "alias").unwrap_or("");
    let typed = form.get("members").unwrap_or("");
    let members = members_of(typed);
    if alias.is_empty() || members.is_empty() {
        let failed = Outcome::Failed(400, t.get("cdir.err_alias_missing").to_string());
        return render(console, ctx, session, (alias, typed), Some(failed));
    }
    if members.len() > MAX_TYPED_MEMBERS {
        let failed = Outcome::Failed(
            400,
            t.fill(
                "cdir.err_too_many",
                &[("max", &MAX_TYPED_MEMBERS.to_string())],
            ),
        );
        return render(console, ctx, session, (alias, typed), Some(failed));
    }
    let target = normalize_address(alias).unwrap_or_else(|| alias.to_string());
    let command = DirectoryCommand::AliasAdd {
        alias: alias.to_string(),
        targets: members,
    };
    match run(console, ctx, session, &command, "alias_add", &target) {
        Ok(_) => {
            let done = Outcome::Done(t.fill("cdir.alias_added", &[("alias", &target)]));
            render(console, ctx, session, ("", ""), Some(done))
        }
        Err(failed) => render(console, ctx, session, (alias, typed), Some(failed)),
    }
}

fn render_edit(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    alias: &str,
    outcome: Option<Outcome>,
) -> Reply {
    let t = ctx.lang.catalog();
    let members = match console.directory.alias(alias) {
        Ok(Some(members)) => members,
        Ok(None) => {
            let failed = Outcome::Failed(404, t.fill("cdir.err_no_alias", &[("alias", alias)]));
            return render(console, ctx, session, ("", ""), Some(failed));
        }
        Err(err) => {
            tracing::error!(%err, "directory failed reading an alias");
            return pages::problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    let alias = normalize_address(alias).unwrap_or_else(|| alias.to_string());
    let status = outcome.as_ref().map_or(200, Outcome::status);
    let (message, error) = outcome.map_or((None, None), Outcome::texts);
    page(
        status,
        &AliasEditPage {
            t,
            chrome: chrome(ctx, "cdir.aliases_title", "/admin/aliases/edit", session),
            csrf_token: session.csrf_token.clone(),
            message,
            error,
            count_text: t.fill(
                "cdir.member_count",
                &[("count", &members.len().to_string())],
            ),
            remove_href: link("/admin/aliases/remove", "alias", &alias),
            alias,
            members,
        },
    )
}

/// `GET /admin/aliases/edit?alias=`.
pub fn edit(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    render_edit(console, ctx, session, query_value(ctx, "alias"), None)
}

/// `POST /admin/aliases/edit` (alias, add: members to add, remove: one member).
pub fn change_members(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let alias = field(&form, "alias").unwrap_or("").to_string();
    let add = members_of(form.get("add").unwrap_or(""));
    let remove = members_of(form.get("remove").unwrap_or(""));
    if add.is_empty() && remove.is_empty() {
        let failed = Outcome::Failed(400, t.get("cdir.err_no_change").to_string());
        return render_edit(console, ctx, session, &alias, Some(failed));
    }
    if add.len() + remove.len() > MAX_TYPED_MEMBERS {
        let failed = Outcome::Failed(
            400,
            t.fill(
                "cdir.err_too_many",
                &[("max", &MAX_TYPED_MEMBERS.to_string())],
            ),
        );
        return render_edit(console, ctx, session, &alias, Some(failed));
    }
    let target = normalize_address(&alias).unwrap_or_else(|| alias.clone());
    let command = DirectoryCommand::AliasMembers {
        alias: alias.clone(),
        add,
        remove,
    };
    let outcome = match run(console, ctx, session, &command, "alias_members", &target) {
        Ok(_) => Outcome::Done(t.fill("cdir.members_changed", &[("alias", &target)])),
        Err(failed) => failed,
    };
    render_edit(console, ctx, session, &alias, Some(outcome))
}

fn confirm_page(ctx: &Ctx<'_>, session: &Session, alias: &str, error: Option<String>) -> Reply {
    let t = ctx.lang.catalog();
    page(
        if error.is_some() { 400 } else { 200 },
        &ConfirmPage {
            t,
            chrome: chrome(ctx, "cdir.aliases_title", "/admin/aliases/remove", session),
            csrf_token: session.csrf_token.clone(),
            heading: t.fill("cdir.alias_remove_heading", &[("alias", alias)]),
            lead: t.fill("cdir.alias_remove_lead", &[("alias", alias)]),
            retention: None,
            action: "/admin/aliases/remove".into(),
            hidden: vec![("alias".into(), alias.to_string())],
            ask_password: false,
            submit: t.get("cdir.remove").to_string(),
            cancel_href: link("/admin/aliases/edit", "alias", alias),
            error,
        },
    )
}

/// `GET /admin/aliases/remove?alias=`: the confirmation page.
pub fn confirm_remove(_console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    confirm_page(ctx, session, query_value(ctx, "alias"), None)
}

/// `POST /admin/aliases/remove` (alias, confirm=yes).
pub fn remove(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let alias = field(&form, "alias").unwrap_or("");
    let target = normalize_address(alias).unwrap_or_else(|| alias.to_string());
    if form.get("confirm") != Some("yes") {
        return confirm_page(
            ctx,
            session,
            &target,
            Some(t.get("cdir.err_confirm").to_string()),
        );
    }
    let command = DirectoryCommand::AliasRemove {
        alias: target.clone(),
    };
    let outcome = match run(console, ctx, session, &command, "alias_remove", &target) {
        Ok(_) => Outcome::Done(t.fill("cdir.alias_removed", &[("alias", &target)])),
        Err(failed) => failed,
    };
    render(console, ctx, session, ("", ""), Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_split_on_lines_and_commas() {
        assert_eq!(
            members_of(" a@x.test\r\nb@x.test, c@x.test;\n\n"),
            ["a@x.test", "b@x.test", "c@x.test"]
        );
    }
}
