//! The console's domains page (`/admin/domains`): add a mail domain (with
//! its DKIM keys, as `campusmail domain add` makes them) and remove one
//! after a confirmation page.
//!
//! Owns: nothing; changes go through `directory::commands` and are audited.
//!
//! Invariants: a domain still used by users or aliases is not removed
//! (the directory refuses, and the page says what to do first).
//!
//! Reads untrusted input: the forms and query of a signed-in admin.

use super::directory_routes::{field, link, query_value, run, Outcome};
use super::directory_views::{chrome, page, ConfirmPage, DomainRow, DomainsPage};
use super::pages::{self, Problem};
use super::{checked_form, Console, Ctx};
use crate::directory::commands::DirectoryCommand;
use crate::web::http::Reply;
use crate::web::session::Session;

/// `GET /admin/domains`.
pub fn show(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    render(console, ctx, session, "", None)
}

fn render(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    typed: &str,
    outcome: Option<Outcome>,
) -> Reply {
    let t = ctx.lang.catalog();
    let domains = match console.directory.domains() {
        Ok(domains) => domains,
        Err(err) => {
            tracing::error!(%err, "directory failed listing domains");
            return pages::problem(ctx.lang, Problem::Internal, Some(session));
        }
    };
    let rows = domains
        .into_iter()
        .map(|domain| DomainRow {
            remove_href: link("/admin/domains/remove", "domain", &domain),
            domain,
        })
        .collect();
    let status = outcome.as_ref().map_or(200, Outcome::status);
    let (message, error) = outcome.map_or((None, None), Outcome::texts);
    page(
        status,
        &DomainsPage {
            t,
            chrome: chrome(ctx, "cdir.domains_title", "/admin/domains", session),
            csrf_token: session.csrf_token.clone(),
            message,
            error,
            rows,
            typed: typed.to_string(),
        },
    )
}

/// `POST /admin/domains` (domain).
pub fn add(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let domain = field(&form, "domain").unwrap_or("").to_ascii_lowercase();
    if domain.is_empty() {
        let failed = Outcome::Failed(400, t.get("cdir.err_no_domain").to_string());
        return render(console, ctx, session, "", Some(failed));
    }
    let command = DirectoryCommand::DomainAdd {
        domain: domain.clone(),
    };
    let outcome = match run(console, ctx, session, &command, "domain_add", &domain) {
        Ok(_) => {
            // Every domain of ours signs its mail from the start (R7).
            match crate::auth::keys::ensure_domain_keys(&console.dkim_dir, &domain) {
                Ok(_) => Outcome::Done(t.fill("cdir.domain_added", &[("domain", &domain)])),
                Err(err) => {
                    tracing::error!(%err, %domain, "DKIM keys for a new domain not made");
                    Outcome::Done(t.fill("cdir.domain_added_no_dkim", &[("domain", &domain)]))
                }
            }
        }
        Err(failed) => return render(console, ctx, session, &domain, Some(failed)),
    };
    render(console, ctx, session, "", Some(outcome))
}

fn confirm_page(ctx: &Ctx<'_>, session: &Session, domain: &str, error: Option<String>) -> Reply {
    let t = ctx.lang.catalog();
    page(
        if error.is_some() { 400 } else { 200 },
        &ConfirmPage {
            t,
            chrome: chrome(ctx, "cdir.domains_title", "/admin/domains/remove", session),
            csrf_token: session.csrf_token.clone(),
            heading: t.fill("cdir.domain_remove_heading", &[("domain", domain)]),
            lead: t.fill("cdir.domain_remove_lead", &[("domain", domain)]),
            retention: None,
            action: "/admin/domains/remove".into(),
            hidden: vec![("domain".into(), domain.to_string())],
            ask_password: false,
            submit: t.get("cdir.remove").to_string(),
            cancel_href: "/admin/domains".into(),
            error,
        },
    )
}

/// `GET /admin/domains/remove?domain=`: the confirmation page.
pub fn confirm_remove(_console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    confirm_page(ctx, session, query_value(ctx, "domain"), None)
}

/// `POST /admin/domains/remove` (domain, confirm=yes).
pub fn remove(console: &Console, ctx: &Ctx<'_>, session: &Session) -> Reply {
    let form = match checked_form(ctx, session) {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let t = ctx.lang.catalog();
    let domain = field(&form, "domain").unwrap_or("").to_ascii_lowercase();
    if form.get("confirm") != Some("yes") {
        return confirm_page(
            ctx,
            session,
            &domain,
            Some(t.get("cdir.err_confirm").to_string()),
        );
    }
    let command = DirectoryCommand::DomainRemove {
        domain: domain.clone(),
    };
    let outcome = match run(console, ctx, session, &command, "domain_remove", &domain) {
        Ok(_) => Outcome::Done(t.fill("cdir.domain_removed", &[("domain", &domain)])),
        Err(failed) => failed,
    };
    render(console, ctx, session, "", Some(outcome))
}
