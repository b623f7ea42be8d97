//! `/mail/folders`: the user's own folders: create (at the top or inside
//! another), rename or move under another, delete (after a confirmation
//! page that says the messages go to Trash).
//!
//! Owns: this page's template data (`FoldersPage`) and how each refusal
//! from the store (`FolderProblem`) reads to the user.
//!
//! Invariants:
//! - The CSRF token is checked before any field is acted on.
//! - Folder names are shown escaped (askama), in the page and in the
//!   folder list; ids come from the store, never from the user.
//! - Deleting needs a POST from the confirmation page; a GET never
//!   changes anything.
//!
//! Reads untrusted input: yes, the form (names, folder ids, action) and
//! the `delete`/`done` query values.

use askama::Template;

use super::folder_nav::{self, list_href};
use super::mailbox::user_bar;
use super::pages::{self, Chrome, MoveTarget, Problem};
use super::{Ctx, Webmail};
use crate::store::{FolderProblem, StoreError, UserFolder};
use crate::web::csrf;
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;

pub const PATH: &str = "/mail/folders";

/// One folder, with its rename form's choices.
pub struct FolderRow {
    pub id: String,
    pub name: String,
    pub href: String,
    pub depth: usize,
    pub parent: String,
    /// Where it can be put: not itself nor anything under it.
    pub parents: Vec<MoveTarget>,
    pub delete_href: String,
}

/// The "delete this folder?" question.
pub struct DeleteConfirm {
    pub id: String,
    pub question: String,
    pub cancel_href: String,
}

#[derive(Template)]
#[template(path = "webmail/folders.html")]
pub struct FoldersPage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    pub csrf_token: String,
    pub rows: Vec<FolderRow>,
    /// Parents for a new folder.
    pub parents: Vec<MoveTarget>,
    pub confirm: Option<DeleteConfirm>,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// What the user typed, kept after a refusal.
    pub new_name: String,
}

/// Folders under `id` (and `id`), by walking the drawn tree.
fn subtree(folders: &[UserFolder], id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    let mut depth_at = None;
    for (f, depth) in folder_nav::tree(folders) {
        match depth_at {
            None if f.id == id => depth_at = Some(depth),
            Some(d) if depth > d => out.push(f.id.clone()),
            Some(_) => break,
            None => {}
        }
    }
    out
}

/// Top level plus every folder not in `except`.
fn parent_choices(t: &Catalog, folders: &[UserFolder], except: &[String]) -> Vec<MoveTarget> {
    let mut out = vec![MoveTarget {
        id: String::new(),
        name: t.get("folders.top_level").to_string(),
    }];
    for (f, depth) in folder_nav::tree(folders) {
        if !except.contains(&f.id) {
            out.push(MoveTarget {
                id: f.id.clone(),
                name: format!("{}{}", "— ".repeat(depth), f.name),
            });
        }
    }
    out
}

fn problem_text(t: &Catalog, p: FolderProblem) -> String {
    let key = match p {
        FolderProblem::NameEmpty => "folders.err_empty",
        FolderProblem::NameTooLong => "folders.err_too_long",
        FolderProblem::NameBadCharacter => "folders.err_bad_character",
        FolderProblem::NameTaken => "folders.err_taken",
        FolderProblem::NoSuchFolder => "folders.err_gone",
        FolderProblem::Cycle => "folders.err_cycle",
        FolderProblem::TooDeep => "folders.err_too_deep",
        FolderProblem::TooMany => "folders.err_too_many",
        FolderProblem::System => "folders.err_system",
    };
    t.get(key).to_string()
}

/// Renders the page; `error` with status 400, else 200.
fn render(
    webmail: &Webmail,
    ctx: &Ctx<'_>,
    session: &Session,
    confirm_delete: Option<&str>,
    notice: Option<String>,
    error: Option<String>,
    new_name: &str,
) -> Reply {
    let t = ctx.lang.catalog();
    let folders = match webmail.store.user_folders(&session.user) {
        Ok(f) => f,
        Err(err) => {
            tracing::error!(%err, "listing folders failed");
            return pages::problem(ctx.lang, Problem::Internal, None);
        }
    };
    let rows = folder_nav::tree(&folders)
        .into_iter()
        .map(|(f, depth)| FolderRow {
            id: f.id.clone(),
            name: f.name.clone(),
            href: list_href(&f.id),
            depth: depth.min(8),
            parent: f.parent.clone().unwrap_or_default(),
            parents: parent_choices(t, &folders, &subtree(&folders, &f.id)),
            delete_href: format!("{PATH}?delete={}", f.id),
        })
        .collect();
    let confirm = match confirm_delete {
        None => None,
        Some(id) => {
            let Some(folder) = folders.iter().find(|f| f.id == id) else {
                return pages::problem(ctx.lang, Problem::NotFound, None);
            };
            let inside = subtree(&folders, id);
            let mut messages = 0;
            for f in &inside {
                messages += webmail
                    .store
                    .folder_counts(&session.user, f)
                    .map(|c| c.total)
                    .unwrap_or(0);
            }
            Some(DeleteConfirm {
                id: id.to_string(),
                question: t.fill(
                    "folders.confirm_delete",
                    &[
                        ("name", &folder.name),
                        ("count", &messages.to_string()),
                        ("subfolders", &(inside.len() - 1).to_string()),
                    ],
                ),
                cancel_href: PATH.to_string(),
            })
        }
    };
    let status = if error.is_some() { 400 } else { 200 };
    let bar = user_bar(webmail, t, session, &folders, None);
    let page = FoldersPage {
        t,
        chrome: Chrome::new(t, "folders.title", PATH, Some(bar)),
        csrf_token: session.csrf_token.clone(),
        rows,
        parents: parent_choices(t, &folders, &[]),
        confirm,
        notice,
        error,
        new_name: new_name.to_string(),
    };
    pages::render(status, &page)
}

/// `GET /mail/folders[?delete=ID][&done=created|renamed|deleted]`.
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let notice = match ctx.query.get("done") {
        Some("created") => Some(t.get("folders.done_created").to_string()),
        Some("renamed") => Some(t.get("folders.done_renamed").to_string()),
        Some("deleted") => Some(t.get("folders.done_deleted").to_string()),
        _ => None,
    };
    render(
        webmail,
        ctx,
        session,
        ctx.query.get("delete"),
        notice,
        None,
        "",
    )
}

/// `POST /mail/folders`: `action` = create, rename or delete.
pub fn submit(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match ctx.req.body_form() {
        Ok(form) => form,
        Err(err) => return super::form_problem(ctx.lang, &err),
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        return pages::problem(ctx.lang, Problem::FormExpired, None);
    }
    let store = &webmail.store;
    let user = &session.user;
    let name = form.get("name").unwrap_or("");
    let parent = form.get("parent").filter(|p| !p.is_empty());
    let folder = form.get("folder").unwrap_or("");
    let result = match form.get("action") {
        Some("create") => store.create_folder(user, name, parent).map(|_| "created"),
        Some("rename") => store
            .rename_folder(user, folder, name, parent)
            .map(|_| "renamed"),
        Some("delete") => store.delete_folder(user, folder).map(|_| "deleted"),
        _ => return pages::problem(ctx.lang, Problem::BadRequest, None),
    };
    match result {
        Ok(done) => Reply::see_other(&format!("{PATH}?done={done}")),
        Err(StoreError::Folder(p)) => {
            let t = ctx.lang.catalog();
            let kept = if form.get("action") == Some("create") {
                name
            } else {
                ""
            };
            render(
                webmail,
                ctx,
                session,
                None,
                None,
                Some(problem_text(t, p)),
                kept,
            )
        }
        Err(err) => {
            tracing::error!(%err, "folder change failed");
            pages::problem(ctx.lang, Problem::Internal, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_follows_the_drawn_tree() {
        let f = |id: &str, parent: Option<&str>| UserFolder {
            id: id.into(),
            name: id.into(),
            parent: parent.map(String::from),
        };
        let folders = vec![
            f("a.1", None),
            f("a.2", Some("a.1")),
            f("a.3", Some("a.2")),
            f("a.4", None),
        ];
        assert_eq!(subtree(&folders, "a.1"), ["a.1", "a.2", "a.3"]);
        assert_eq!(subtree(&folders, "a.3"), ["a.3"]);
    }
}
