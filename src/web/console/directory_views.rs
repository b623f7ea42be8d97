//! The templates of the console's directory pages
//! (`templates/console/{user_edit,confirm,classes,domains,aliases,alias_edit,import}.html`)
//! and the data each shows, already display strings.
//!
//! Invariants: every value is escaped by askama (no `|safe`); text comes
//! from the catalogs (`[cdir]` and `[console]`), never the templates.
//!
//! Reads untrusted input: directory values (rendered escaped).

use askama::Template;

use super::pages::ConsoleChrome;
use super::Ctx;
use crate::web::http::Reply;
use crate::web::i18n::Catalog;
use crate::web::session::Session;
use crate::web::webmail::pages::render;

/// The frame of a signed-in directory page.
pub fn chrome(ctx: &Ctx<'_>, title_key: &str, path: &str, session: &Session) -> ConsoleChrome {
    ConsoleChrome::new(ctx.lang.catalog(), title_key, path, Some(session))
}

/// One user's page.
pub struct UserView {
    pub address: String,
    pub display_name: String,
    pub state: String,
    pub enabled: bool,
    pub class: String,
    pub classes: Vec<String>,
    pub leave_date: String,
    /// As the admin types them: "" = default, "unlimited", or a number.
    pub quota_bytes: String,
    pub quota_messages: String,
    pub limits_text: String,
    pub usage_text: String,
    pub created_text: String,
    pub delete_href: String,
}

#[derive(Template)]
#[template(path = "console/user_edit.html")]
pub struct UserEditPage<'a> {
    pub t: &'a Catalog,
    pub chrome: ConsoleChrome,
    pub csrf_token: String,
    pub message: Option<String>,
    pub error: Option<String>,
    pub user: UserView,
}

/// A "do you really want to" page: what happens, then one POST button.
#[derive(Template)]
#[template(path = "console/confirm.html")]
pub struct ConfirmPage<'a> {
    pub t: &'a Catalog,
    pub chrome: ConsoleChrome,
    pub csrf_token: String,
    pub heading: String,
    pub lead: String,
    /// The data-retention rule, where there is one to state.
    pub retention: Option<String>,
    pub action: String,
    pub hidden: Vec<(String, String)>,
    /// Destructive steps ask for the admin's own password again.
    pub ask_password: bool,
    pub submit: String,
    pub cancel_href: String,
    pub error: Option<String>,
}

/// One line of the licence view.
pub struct ClassRow {
    pub name: String,
    pub defined: bool,
    pub quota_text: String,
    pub rule_text: String,
    /// "12 enabled, 3 disabled (15 seats)".
    pub seats_text: String,
}

#[derive(Template)]
#[template(path = "console/classes.html")]
pub struct ClassesPage<'a> {
    pub t: &'a Catalog,
    pub chrome: ConsoleChrome,
    pub csrf_token: String,
    pub message: Option<String>,
    pub error: Option<String>,
    pub rows: Vec<ClassRow>,
    pub defined: Vec<String>,
    pub seats_text: String,
}

pub struct DomainRow {
    pub domain: String,
    pub remove_href: String,
}

#[derive(Template)]
#[template(path = "console/domains.html")]
pub struct DomainsPage<'a> {
    pub t: &'a Catalog,
    pub chrome: ConsoleChrome,
    pub csrf_token: String,
    pub message: Option<String>,
    pub error: Option<String>,
    pub rows: Vec<DomainRow>,
    pub typed: String,
}

pub struct AliasRow {
    pub alias: String,
    pub count_text: String,
    pub preview: String,
    pub edit_href: String,
    pub remove_href: String,
}

#[derive(Template)]
#[template(path = "console/aliases.html")]
pub struct AliasesPage<'a> {
    pub t: &'a Catalog,
    pub chrome: ConsoleChrome,
    pub csrf_token: String,
    pub message: Option<String>,
    pub error: Option<String>,
    pub rows: Vec<AliasRow>,
    pub typed_alias: String,
    pub typed_members: String,
}

#[derive(Template)]
#[template(path = "console/alias_edit.html")]
pub struct AliasEditPage<'a> {
    pub t: &'a Catalog,
    pub chrome: ConsoleChrome,
    pub csrf_token: String,
    pub message: Option<String>,
    pub error: Option<String>,
    pub alias: String,
    pub members: Vec<String>,
    pub count_text: String,
    pub remove_href: String,
}

#[derive(Template)]
#[template(path = "console/import.html")]
pub struct ImportPage<'a> {
    pub t: &'a Catalog,
    pub chrome: ConsoleChrome,
    pub csrf_token: String,
    pub message: Option<String>,
    pub error: Option<String>,
    /// The import's report, one line each ("line 3: ...").
    pub report: Vec<String>,
    pub limit_text: String,
}

/// Renders any of the pages above.
pub fn page(status: u16, page: &impl Template) -> Reply {
    render(status, page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Lang;

    fn session() -> Session {
        Session {
            user: "admin".into(),
            stamp: None,
            csrf_token: "tok".into(),
            created_at: 0,
            ip: std::net::IpAddr::from([192, 0, 2, 1]),
        }
    }

    #[test]
    fn directory_pages_escape_what_they_show() {
        let t = Lang::En.catalog();
        let s = session();
        let chrome = || ConsoleChrome::new(t, "cdir.aliases_title", "/admin/aliases", Some(&s));
        let html = AliasEditPage {
            t,
            chrome: chrome(),
            csrf_token: "tok".into(),
            message: None,
            error: Some("<b>x</b>".into()),
            alias: "<script>@campus.test".into(),
            members: vec!["\"><img src=x>".into()],
            count_text: String::new(),
            remove_href: "/admin/aliases/remove?alias=a".into(),
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>") && !html.contains("<img") && !html.contains("<b>x"));
        assert!(html.contains("name=\"csrf_token\" value=\"tok\""));
        let html = ConfirmPage {
            t,
            chrome: chrome(),
            csrf_token: "tok".into(),
            heading: "h".into(),
            lead: "<i>lead</i>".into(),
            retention: Some("kept".into()),
            action: "/admin/users/delete".into(),
            hidden: vec![("address".into(), "\"><x".into())],
            ask_password: true,
            submit: "Delete".into(),
            cancel_href: "/admin/users".into(),
            error: None,
        }
        .render()
        .unwrap();
        assert!(!html.contains("<i>lead") && !html.contains("\"><x"));
        assert!(html.contains("name=\"admin_password\""));
    }
}
