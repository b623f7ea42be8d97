//! `/mail/contacts`: the user's address book. Saved contacts (add, edit,
//! delete) and the addresses collected from mail they sent (save one as a
//! contact, or forget it), stored by `directory::contacts`.
//!
//! Invariants:
//! - Every POST checks the CSRF token before any field is read further.
//! - Changes go only through `Directory::save_contact`/`delete_contact`,
//!   which check them; a refusal shows the form again with what was typed
//!   and a message naming the problem (and the limit, if any).
//! - `GET ?add=ADDRESS&name=NAME` (the message page's "add to address
//!   book") and `?edit=ADDRESS` only fill the form; nothing is saved
//!   without a POST.
//!
//! Reads untrusted input: yes, every form and query field; names and notes
//! are rendered escaped by askama.

use askama::Template;

use super::mailbox::{user_bar, user_folders};
use super::pages::{self, Chrome, Problem};
use super::{Ctx, Webmail};
use crate::directory::contacts::{Collected, Contact, ContactForm, MAX_CONTACTS};
use crate::directory::DirectoryError;
use crate::web::csrf;
use crate::web::form::{encode, Form};
use crate::web::format;
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;

pub const PATH: &str = "/mail/contacts";

/// One saved contact on the page.
pub struct ContactRow {
    pub name: String,
    pub address: String,
    pub note: String,
    pub edit_href: String,
    pub compose_href: String,
}

/// One collected address on the page.
pub struct CollectedRow {
    pub address: String,
    pub uses_text: String,
    pub last_used: String,
    pub save_href: String,
}

/// The form at the top: a new contact, or the one being edited.
#[derive(Default)]
pub struct ContactFormView {
    pub name: String,
    pub address: String,
    pub note: String,
    /// The address of the contact being edited (empty: adding).
    pub replacing: String,
}

#[derive(Template)]
#[template(path = "webmail/contacts.html")]
pub struct ContactsPage<'a> {
    pub t: &'a Catalog,
    pub chrome: Chrome,
    pub csrf_token: String,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub form: ContactFormView,
    pub contacts: Vec<ContactRow>,
    pub collected: Vec<CollectedRow>,
    pub count_text: String,
}

fn compose_href(address: &str) -> String {
    format!("/mail/compose?to={}", encode(address))
}

fn contact_rows(contacts: Vec<Contact>) -> Vec<ContactRow> {
    contacts
        .into_iter()
        .map(|c| ContactRow {
            edit_href: format!("{PATH}?edit={}#contact-form", encode(&c.address)),
            compose_href: compose_href(&c.address),
            name: c.name,
            address: c.address,
            note: c.note,
        })
        .collect()
}

fn collected_rows(
    t: &Catalog,
    collected: Vec<Collected>,
    saved: &[ContactRow],
) -> Vec<CollectedRow> {
    collected
        .into_iter()
        .filter(|c| !saved.iter().any(|s| s.address == c.address))
        .map(|c| CollectedRow {
            uses_text: t.fill("contacts.uses", &[("count", &c.uses.to_string())]),
            last_used: format::date_time(c.last_used),
            save_href: format!("{PATH}?add={}#contact-form", encode(&c.address)),
            address: c.address,
        })
        .collect()
}

fn render(
    webmail: &Webmail,
    ctx: &Ctx<'_>,
    session: &Session,
    notice: Option<String>,
    error: Option<String>,
    form: ContactFormView,
) -> Reply {
    let t = ctx.lang.catalog();
    let dir = &webmail.directory;
    let contacts = contact_rows(dir.contacts(&session.user).unwrap_or_else(|err| {
        tracing::error!(%err, "address book unreadable");
        Vec::new()
    }));
    let collected = dir.collected(&session.user).unwrap_or_else(|err| {
        tracing::error!(%err, "collected addresses unreadable");
        Vec::new()
    });
    let collected = collected_rows(t, collected, &contacts);
    let folders = user_folders(webmail, &session.user);
    let bar = user_bar(webmail, t, session, &folders, None);
    let page = ContactsPage {
        t,
        chrome: Chrome::new(t, "contacts.title", PATH, Some(bar)),
        csrf_token: session.csrf_token.clone(),
        notice,
        count_text: t.fill(
            "contacts.count",
            &[
                ("count", &contacts.len().to_string()),
                ("max", &MAX_CONTACTS.to_string()),
            ],
        ),
        error: error.clone(),
        form,
        contacts,
        collected,
    };
    pages::render(if error.is_some() { 400 } else { 200 }, &page)
}

/// `GET /mail/contacts[?done=saved|deleted][&add=ADDRESS&name=NAME][&edit=ADDRESS]`.
pub fn show(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let t = ctx.lang.catalog();
    let q = &ctx.query;
    let notice = match q.get("done") {
        Some("saved") => Some(t.get("contacts.saved").to_string()),
        Some("deleted") => Some(t.get("contacts.deleted").to_string()),
        _ => None,
    };
    let mut form = ContactFormView {
        name: q.get("name").unwrap_or("").to_string(),
        address: q.get("add").unwrap_or("").to_string(),
        note: String::new(),
        replacing: String::new(),
    };
    if let Some(edit) = q.get("edit") {
        match webmail.directory.contact(&session.user, edit) {
            Ok(Some(c)) => {
                form = ContactFormView {
                    name: c.name,
                    replacing: c.address.clone(),
                    address: c.address,
                    note: c.note,
                }
            }
            Ok(None) => {
                let error = Some(t.get("contacts.err_not_found").to_string());
                return render(webmail, ctx, session, notice, error, form);
            }
            Err(err) => {
                tracing::error!(%err, "address book unreadable");
                return pages::problem(ctx.lang, Problem::Internal, None);
            }
        }
    }
    render(webmail, ctx, session, notice, None, form)
}

/// `POST /mail/contacts`: `action=save` (name, address, note, replacing)
/// or `action=delete` (address).
pub fn submit(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match ctx.req.body_form() {
        Ok(form) => form,
        Err(err) => return super::form_problem(ctx.lang, &err),
    };
    if !csrf::matches(&session.csrf_token, form.get(csrf::FIELD)) {
        return pages::problem(ctx.lang, Problem::FormExpired, None);
    }
    match form.get("action") {
        Some("save") => save(webmail, ctx, session, &form),
        Some("delete") => delete(webmail, ctx, session, &form),
        _ => pages::problem(ctx.lang, Problem::BadRequest, None),
    }
}

fn save(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session, form: &Form) -> Reply {
    let field = |name: &str| form.get(name).unwrap_or("").to_string();
    let typed = ContactForm {
        name: field("name"),
        address: field("address"),
        note: field("note"),
    };
    let replacing = field("replacing");
    let replacing = (!replacing.is_empty()).then_some(replacing.as_str());
    match webmail
        .directory
        .save_contact(&session.user, &typed, replacing)
    {
        Ok(_) => {
            tracing::info!(user = %session.user, "contact saved");
            Reply::see_other(&format!("{PATH}?done=saved"))
        }
        Err(err) => {
            let view = ContactFormView {
                name: typed.name,
                address: typed.address,
                note: typed.note,
                replacing: replacing.unwrap_or("").to_string(),
            };
            refused(webmail, ctx, session, err, view)
        }
    }
}

fn delete(webmail: &Webmail, ctx: &Ctx<'_>, session: &Session, form: &Form) -> Reply {
    let address = form.get("address").unwrap_or("");
    match webmail.directory.delete_contact(&session.user, address) {
        Ok(()) => Reply::see_other(&format!("{PATH}?done=deleted")),
        Err(err) => refused(webmail, ctx, session, err, ContactFormView::default()),
    }
}

/// The page again with the problem named, or the error page for a
/// database failure.
fn refused(
    webmail: &Webmail,
    ctx: &Ctx<'_>,
    session: &Session,
    err: DirectoryError,
    view: ContactFormView,
) -> Reply {
    match err {
        DirectoryError::Contact(problem) => {
            let t = ctx.lang.catalog();
            let error = t.fill(
                problem.catalog_key(),
                &[("max", &problem.limit().to_string())],
            );
            render(webmail, ctx, session, None, Some(error), view)
        }
        err => {
            tracing::error!(%err, "saving the address book failed");
            pages::problem(ctx.lang, Problem::Internal, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Lang;

    #[test]
    fn names_notes_and_addresses_are_escaped() {
        let t = Lang::Ko.catalog();
        let evil = "<script>alert(1)</script>";
        let page = ContactsPage {
            t,
            chrome: Chrome::new(t, "contacts.title", PATH, None),
            csrf_token: "tok".into(),
            notice: None,
            error: Some(format!("\"><img src=x onerror=alert(2)>{evil}")),
            form: ContactFormView {
                name: format!("\"><svg onload=alert(3)>{evil}"),
                address: evil.into(),
                note: evil.into(),
                replacing: "\"><b>r".into(),
            },
            contacts: contact_rows(vec![Contact {
                address: "lee@x.test".into(),
                name: format!("<img src=x onerror=alert(4)>{evil}"),
                note: evil.into(),
            }]),
            collected: Vec::new(),
            count_text: "<i>1</i>".into(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img src=x") && !html.contains("<svg"));
        assert!(!html.contains("<b>r") && !html.contains("<i>1"));
        assert!(html.contains("name=\"csrf_token\" value=\"tok\""));
        assert_eq!(
            html.matches("name=\"csrf_token\"").count(),
            2,
            "save and delete"
        );
    }
}
