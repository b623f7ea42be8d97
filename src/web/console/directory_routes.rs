//! The console's directory pages beyond the user list: one user's page
//! (edit, enable, disable, force logout, reset password, delete), classes
//! and the licence view, domains, aliases and groups, CSV import and
//! export. Their routes, and the steps every one of their actions shares.
//!
//! Owns: the `DirPage` routes (exact paths, like `Route::parse`), and the
//! rules of an action: CSRF first (`checked_form`), the admin's own
//! password again for destructive steps (`admin_password_ok`), the change
//! through `directory::commands::execute`, one audit line before the
//! reply (`Console::audit`).
//!
//! Invariants:
//! - Every route here is behind the console's admin gate (`Console::dispatch`
//!   reaches `dispatch` only with a live admin session).
//! - A GET never changes anything; every change is a POST.
//! - Passwords (the user's new one, the admin's own) are never echoed,
//!   logged or audited.
//!
//! Reads untrusted input: query strings and forms of a signed-in admin.

use super::pages::{self, Problem};
use super::{Console, Ctx};
use crate::directory::commands::{execute, DirectoryCommand};
use crate::directory::refusal::Refusal;
use crate::directory::DirectoryError;
use crate::web::http::{Method, Reply};
use crate::web::session::Session;

use super::{aliases_page, classes_page, domains_page, transfer, user_edit};

/// Longest value of any field of these forms (the CSV upload aside).
pub const MAX_FIELD: usize = 1024;

/// A directory page of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirPage {
    UserEdit,
    UserEnable,
    UserLogout,
    UserPassword,
    UserClass,
    UserDelete,
    UserImport,
    UserExport,
    Classes,
    ClassSet,
    ClassCheck,
    Domains,
    DomainRemove,
    Aliases,
    AliasEdit,
    AliasRemove,
}

impl DirPage {
    /// Exact matches only, like `Route::parse`.
    pub fn parse(path: &str) -> Option<DirPage> {
        Some(match path {
            "/admin/users/edit" => DirPage::UserEdit,
            "/admin/users/enable" => DirPage::UserEnable,
            "/admin/users/logout" => DirPage::UserLogout,
            "/admin/users/password" => DirPage::UserPassword,
            "/admin/users/class" => DirPage::UserClass,
            "/admin/users/delete" => DirPage::UserDelete,
            "/admin/users/import" => DirPage::UserImport,
            "/admin/users/export" => DirPage::UserExport,
            "/admin/classes" => DirPage::Classes,
            "/admin/classes/set" => DirPage::ClassSet,
            "/admin/classes/check" => DirPage::ClassCheck,
            "/admin/domains" => DirPage::Domains,
            "/admin/domains/remove" => DirPage::DomainRemove,
            "/admin/aliases" => DirPage::Aliases,
            "/admin/aliases/edit" => DirPage::AliasEdit,
            "/admin/aliases/remove" => DirPage::AliasRemove,
            _ => return None,
        })
    }

    /// Every path, for tests that walk them all.
    pub const ALL_PATHS: [&'static str; 16] = [
        "/admin/users/edit",
        "/admin/users/enable",
        "/admin/users/logout",
        "/admin/users/password",
        "/admin/users/class",
        "/admin/users/delete",
        "/admin/users/import",
        "/admin/users/export",
        "/admin/classes",
        "/admin/classes/set",
        "/admin/classes/check",
        "/admin/domains",
        "/admin/domains/remove",
        "/admin/aliases",
        "/admin/aliases/edit",
        "/admin/aliases/remove",
    ];
}

/// Answers one directory page for a signed-in admin.
pub fn dispatch(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    method: Method,
    page: DirPage,
) -> Reply {
    use DirPage::*;
    match (method, page) {
        (Method::Get, UserEdit) => user_edit::show(console, ctx, session),
        (Method::Post, UserEdit) => user_edit::save(console, ctx, session),
        (Method::Post, UserEnable) => user_edit::enable(console, ctx, session),
        (Method::Post, UserLogout) => user_edit::force_logout(console, ctx, session),
        (Method::Post, UserPassword) => user_edit::reset_password(console, ctx, session),
        (Method::Post, UserClass) => user_edit::set_class(console, ctx, session),
        (Method::Get, UserDelete) => user_edit::confirm_delete(console, ctx, session),
        (Method::Post, UserDelete) => user_edit::delete(console, ctx, session),
        (Method::Get, UserImport) => transfer::show(console, ctx, session),
        (Method::Post, UserImport) => transfer::import(console, ctx, session),
        (Method::Get, UserExport) => transfer::export(console, ctx, session),
        (Method::Get, Classes) => classes_page::show(console, ctx, session),
        (Method::Post, Classes) => classes_page::add(console, ctx, session),
        (Method::Post, ClassSet) => classes_page::set(console, ctx, session),
        (Method::Post, ClassCheck) => classes_page::check_now(console, ctx, session),
        (Method::Get, Domains) => domains_page::show(console, ctx, session),
        (Method::Post, Domains) => domains_page::add(console, ctx, session),
        (Method::Get, DomainRemove) => domains_page::confirm_remove(console, ctx, session),
        (Method::Post, DomainRemove) => domains_page::remove(console, ctx, session),
        (Method::Get, Aliases) => aliases_page::show(console, ctx, session),
        (Method::Post, Aliases) => aliases_page::add(console, ctx, session),
        (Method::Get, AliasEdit) => aliases_page::edit(console, ctx, session),
        (Method::Post, AliasEdit) => aliases_page::change_members(console, ctx, session),
        (Method::Get, AliasRemove) => aliases_page::confirm_remove(console, ctx, session),
        (Method::Post, AliasRemove) => aliases_page::remove(console, ctx, session),
        _ => pages::problem(ctx.lang, Problem::Method, Some(session)),
    }
}

/// The result of an action, for the message above the page.
pub enum Outcome {
    Done(String),
    Failed(u16, String),
}

impl Outcome {
    pub fn status(&self) -> u16 {
        match self {
            Outcome::Done(_) => 200,
            Outcome::Failed(status, _) => *status,
        }
    }

    /// (message, error) for a template.
    pub fn texts(self) -> (Option<String>, Option<String>) {
        match self {
            Outcome::Done(text) => (Some(text), None),
            Outcome::Failed(_, text) => (None, Some(text)),
        }
    }
}

/// A form field, trimmed; "" when absent; None when over `MAX_FIELD`.
pub fn field<'a>(form: &'a crate::web::form::Form, name: &str) -> Option<&'a str> {
    let value = form.get(name).unwrap_or("").trim();
    (value.len() <= MAX_FIELD).then_some(value)
}

/// Checks the signed-in admin's own password, typed again for a
/// destructive step. A wrong one is audited (as `action`, outcome
/// `wrong_admin_password`) and answered with the reason.
pub fn admin_password_ok(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    typed: &str,
    action: &str,
    target: &str,
) -> Result<(), Outcome> {
    let t = ctx.lang.catalog();
    let ok = !typed.is_empty()
        && typed.len() <= MAX_FIELD
        && console
            .directory
            .authenticate_admin(&session.user, typed)
            .unwrap_or(false);
    if ok {
        return Ok(());
    }
    console.audit(ctx, &session.user, action, target, "wrong_admin_password");
    tracing::warn!(admin = %session.user, ip = %ctx.ip(), action, "console step refused: admin password wrong");
    Err(Outcome::Failed(
        403,
        t.get("cdir.err_admin_password").to_string(),
    ))
}

/// Runs `command` like the CLI does and audits it as `action` on
/// `target`: `ok` and the command's own text, or the failure in plain words.
pub fn run(
    console: &Console,
    ctx: &Ctx<'_>,
    session: &Session,
    command: &DirectoryCommand,
    action: &str,
    target: &str,
) -> Result<String, Outcome> {
    match execute(&console.directory, command) {
        Ok(text) => {
            console.audit(ctx, &session.user, action, target, "ok");
            tracing::info!(admin = %session.user, action, target, "console directory change");
            Ok(text)
        }
        Err(err) => {
            let (status, code, text) = explain(ctx, &err, target);
            console.audit(ctx, &session.user, action, target, code);
            Err(Outcome::Failed(status, text))
        }
    }
}

/// Status, audit code and plain-words message for a directory failure.
pub fn explain(ctx: &Ctx<'_>, err: &DirectoryError, target: &str) -> (u16, &'static str, String) {
    let t = ctx.lang.catalog();
    match err {
        DirectoryError::BadAddress(_) => (
            400,
            "bad_address",
            t.fill("console.err_bad_address", &[("address", target)]),
        ),
        DirectoryError::BadDomain(domain) => (
            400,
            "bad_domain",
            t.fill("cdir.err_bad_domain", &[("domain", domain)]),
        ),
        DirectoryError::UnknownDomain(domain) => (
            400,
            "unknown_domain",
            t.fill("console.err_unknown_domain", &[("domain", domain)]),
        ),
        DirectoryError::DomainExists(domain) => (
            409,
            "domain_exists",
            t.fill("cdir.err_domain_exists", &[("domain", domain)]),
        ),
        DirectoryError::AddressTaken(_) => (
            409,
            "address_taken",
            t.fill("console.err_taken", &[("address", target)]),
        ),
        DirectoryError::NoSuchUser(_) => (
            404,
            "no_such_user",
            t.fill("console.err_no_such_user", &[("address", target)]),
        ),
        DirectoryError::BadAliasTarget(member) => (
            400,
            "bad_member",
            t.fill("cdir.err_bad_member", &[("address", member)]),
        ),
        DirectoryError::Password(crate::directory::password::PasswordError::TooShort) => (
            400,
            "password_too_short",
            t.fill(
                "console.err_password_short",
                &[(
                    "min",
                    &crate::directory::password::MIN_PASSWORD_CHARS.to_string(),
                )],
            ),
        ),
        DirectoryError::Refused(why) => (400, "refused", refusal_text(t, why)),
        // Any other refusal in the directory's own (English) words, after
        // a localized lead-in.
        DirectoryError::BadValue(text) => {
            (400, "refused", t.fill("cdir.err_refused", &[("why", text)]))
        }
        DirectoryError::ImportRefused(problems) => (
            400,
            "import_refused",
            t.fill("cdir.err_refused", &[("why", &problems.to_string())]),
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

/// A refusal in the page's language.
fn refusal_text(t: &crate::web::i18n::Catalog, why: &Refusal) -> String {
    use crate::directory::classes::{MAX_CLASS_CHARS, MAX_GRACE_DAYS};
    use crate::directory::groups::MAX_MEMBERS;
    use crate::directory::user_admin::MAX_DISPLAY_NAME;
    let n = |v: usize| v.to_string();
    match why {
        Refusal::BadClassName(name) => t.fill(
            "cdir.ref_bad_class_name",
            &[("name", name), ("max", &n(MAX_CLASS_CHARS))],
        ),
        Refusal::ClassExists(class) => t.fill("cdir.ref_class_exists", &[("class", class)]),
        Refusal::NoSuchClass(class) => t.fill("cdir.ref_no_such_class", &[("class", class)]),
        Refusal::ClassInUse { class, users } => t.fill(
            "cdir.ref_class_in_use",
            &[("class", class), ("users", &n(*users))],
        ),
        Refusal::GraceTooLong => t.fill(
            "cdir.ref_grace_too_long",
            &[("max", &MAX_GRACE_DAYS.to_string())],
        ),
        Refusal::BadDays(typed) => t.fill("cdir.ref_bad_days", &[("typed", typed)]),
        Refusal::BadLimit { typed, .. } => t.fill("cdir.ref_bad_limit", &[("typed", typed)]),
        Refusal::BadLeaveDate(typed) => t.fill("cdir.ref_bad_leave_date", &[("typed", typed)]),
        Refusal::NameTooLong => t.fill("cdir.ref_name_too_long", &[("max", &n(MAX_DISPLAY_NAME))]),
        Refusal::NameHasControl => t.get("cdir.ref_name_control").to_string(),
        Refusal::NoSuchDomain(domain) => t.fill("cdir.ref_no_such_domain", &[("domain", domain)]),
        Refusal::DomainInUse {
            domain,
            users,
            aliases,
        } => t.fill(
            "cdir.ref_domain_in_use",
            &[
                ("domain", domain),
                ("users", &n(*users)),
                ("aliases", &n(*aliases)),
            ],
        ),
        Refusal::NoSuchAlias(alias) => t.fill("cdir.ref_no_such_alias", &[("alias", alias)]),
        Refusal::LastMember(alias) => t.fill("cdir.ref_last_member", &[("alias", alias)]),
        Refusal::TooManyMembers => t.fill("cdir.ref_too_many_members", &[("max", &n(MAX_MEMBERS))]),
    }
}

/// `?name=` of a GET, bounded; "" when absent.
pub fn query_value<'a>(ctx: &'a Ctx<'_>, name: &str) -> &'a str {
    let value = ctx.query.get(name).unwrap_or("").trim();
    if value.len() > MAX_FIELD {
        ""
    } else {
        value
    }
}

/// `path?name=value`, the value URL-encoded.
pub fn link(path: &str, name: &str, value: &str) -> String {
    format!("{path}?{name}={}", crate::web::form::encode(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_in_both_languages() {
        use crate::web::i18n::Lang;
        let why = Refusal::DomainInUse {
            domain: "campus.test".into(),
            users: 3,
            aliases: 1,
        };
        for lang in [Lang::Ko, Lang::En] {
            let text = refusal_text(lang.catalog(), &why);
            assert!(text.contains("campus.test") && text.contains('3'), "{text}");
            assert!(!text.contains('{'), "{text}");
        }
        assert!(refusal_text(Lang::Ko.catalog(), &why).contains("사용자"));
    }

    #[test]
    fn every_directory_path_parses_and_nothing_else() {
        for path in DirPage::ALL_PATHS {
            assert!(DirPage::parse(path).is_some(), "{path}");
        }
        for path in ["/admin/users/edit/", "/admin/classes/", "/admin/aliases/x"] {
            assert_eq!(DirPage::parse(path), None, "{path}");
        }
    }
}
