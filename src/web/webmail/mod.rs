//! The webmail: routes, and the session gate in front of the mail pages.
//!
//! Owns: the route table (`Route::parse`) and the `Webmail` state the
//! handlers share (config, store, directory, session table; the session
//! table is shared with the console, which owns its own admin sessions).
//!
//! Invariants:
//! - `/admin` and below go to the console (`web::console`), and `/metrics`
//!   to `web::metrics`, before any webmail routing; webmail routes never
//!   see them.
//! - `handle` is the one door: it parses the route, picks the language,
//!   checks the session for mail pages, and every reply leaves through
//!   `Reply::finish` (security headers).
//! - Mail pages are reached only through `require_session`; a missing,
//!   ended or expired session never reaches a store call.
//! - Every POST checks its CSRF token first (`login.rs`, `send.rs`,
//!   `actions.rs`, `folders_page.rs`, `settings.rs`, `contacts_page.rs`).
//! - After login, pages speak the language saved in the user's settings
//!   (`gated`); the login page follows the browser or the default.
//! - Failures become localized pages (`pages::problem`); internal error text
//!   goes to the log, never to the page.
//!
//! Reads untrusted input: yes, every request (path, query, cookies, form).

mod actions;
pub mod compose;
pub(crate) mod contacts_page;
mod conversation_list;
mod folder_nav;
mod folders_page;
mod list_query;
mod login;
mod mailbox;
pub mod pages;
mod search;
mod send;
mod settings;
mod settings_forms;
mod suggest;

use std::str::FromStr;
use std::sync::Arc;

use crate::config::Config;
use crate::directory::Directory;
use crate::store::{MessageId, Store};
use crate::web::assets;
use crate::web::console::{self, Console};
use crate::web::form::{Form, FormError};
use crate::web::http::{session_cookie, Method, Reply, WebRequest};
use crate::web::i18n::Lang;
use crate::web::session::{self, Session, SessionLookup, SessionStore};

use pages::Problem;

/// Cookie that remembers a language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "lang";

/// What the handlers share.
pub struct Webmail {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
    /// Shared with the console, which ends a disabled user's session.
    pub sessions: Arc<SessionStore>,
    /// The admin console, answering `/admin` and below.
    console: Console,
    /// This node's measurements (`/metrics`, the console's dashboard).
    monitor: Arc<crate::ops::node_report::Monitor>,
    default_lang: Lang,
}

/// Where a request goes, from its path alone.
#[derive(Debug, PartialEq)]
pub enum Route {
    Root,
    Login,
    Logout,
    Inbox,
    Compose,
    Actions,
    Folders,
    Settings,
    Search,
    Contacts,
    Suggest,
    Message(MessageId),
    MessageBody(MessageId),
    MessageRaw(MessageId),
    Static(&'static str),
    NotFound,
}

impl Route {
    /// Exact matches only: no trailing slashes, no decoding, no `..`.
    pub fn parse(path: &str) -> Route {
        match path {
            "/" => return Route::Root,
            "/login" => return Route::Login,
            "/logout" => return Route::Logout,
            "/mail" => return Route::Inbox,
            compose::PATH => return Route::Compose,
            "/mail/actions" => return Route::Actions,
            folders_page::PATH => return Route::Folders,
            settings::PATH => return Route::Settings,
            search::PATH => return Route::Search,
            contacts_page::PATH => return Route::Contacts,
            suggest::PATH => return Route::Suggest,
            _ => {}
        }
        if let Some(name) = path.strip_prefix("/static/") {
            return match assets::find(name) {
                Some(asset) => Route::Static(asset.name),
                None => Route::NotFound,
            };
        }
        let Some(rest) = path.strip_prefix("/mail/message/") else {
            return Route::NotFound;
        };
        let (id, part) = match rest.split_once('/') {
            Some((id, part @ ("body" | "raw"))) => (id, part),
            Some(_) => return Route::NotFound,
            None => (rest, ""),
        };
        match (MessageId::from_str(id), part) {
            (Ok(id), "body") => Route::MessageBody(id),
            (Ok(id), "raw") => Route::MessageRaw(id),
            (Ok(id), _) => Route::Message(id),
            (Err(_), _) => Route::NotFound,
        }
    }
}

/// One request with what `answer` worked out about it.
pub struct Ctx<'r> {
    pub req: &'r WebRequest,
    pub lang: Lang,
    pub query: Form,
    pub now: i64,
}

impl Ctx<'_> {
    pub fn ip(&self) -> std::net::IpAddr {
        self.req.client.ip()
    }
}

/// The steps every page request shares (webmail and console): the query is
/// parsed strictly (`problem` answers a bad one), the language is chosen
/// (`?lang=`, cookie, Accept-Language, default) and remembered when asked
/// for, `page` answers, and the security headers are added.
pub(crate) fn answer(
    req: &WebRequest,
    default_lang: Lang,
    problem: fn(Lang, &FormError) -> Reply,
    page: impl FnOnce(&Ctx<'_>) -> Reply,
) -> Reply {
    let query = req.query_form();
    let chosen = query
        .as_ref()
        .ok()
        .and_then(|q| q.get("lang"))
        .and_then(Lang::parse);
    let lang = Lang::negotiate(
        chosen.map(Lang::code),
        req.cookie(LANG_COOKIE),
        req.accept_language.as_deref(),
        default_lang,
    );
    let reply = match query {
        Err(err) => problem(lang, &err),
        Ok(query) => page(&Ctx {
            req,
            lang,
            query,
            now: unix_now(),
        }),
    };
    let reply = match chosen {
        Some(lang) if req.method == Method::Get => reply.with_header(
            "Set-Cookie",
            session_cookie(LANG_COOKIE, lang.code(), Some(365 * 24 * 3600)),
        ),
        _ => reply,
    };
    reply.finish()
}

impl Webmail {
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        directory: Arc<Directory>,
        monitor: Arc<crate::ops::node_report::Monitor>,
    ) -> Webmail {
        let default_lang = Lang::parse(&config.mailbox.default_language).unwrap_or(Lang::Ko);
        let sessions = Arc::new(SessionStore::new(config.mailbox.session_idle_minutes));
        let console = Console::new(
            &config,
            Arc::clone(&directory),
            Arc::clone(&store),
            Arc::clone(&sessions),
            Arc::clone(&monitor),
        );
        Webmail {
            config,
            store,
            directory,
            sessions,
            console,
            monitor,
            default_lang,
        }
    }

    /// This node's measurements (the mailbox role installs the pair probe).
    pub fn monitor(&self) -> &Arc<crate::ops::node_report::Monitor> {
        &self.monitor
    }

    /// Largest request body read for `req` (headers only so far): the
    /// compose form of a live session takes files up to its upload limit;
    /// everything else, and anyone without a session, `MAX_FORM_BODY`, so
    /// a stranger cannot make a worker read megabytes.
    pub fn body_limit(&self, req: &WebRequest) -> usize {
        let live = || {
            req.cookie(session::COOKIE)
                .is_some_and(|token| self.sessions.is_live(token, unix_now()))
        };
        if console::owns_path(&req.path) {
            self.console.body_limit(req)
        } else if req.path == compose::PATH && live() {
            compose::ComposeLimits::from_config(&self.config).request_bytes
        } else {
            crate::web::http::MAX_FORM_BODY
        }
    }

    /// The admin console (the mailbox role's lifecycle check runs through it).
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// Answers one request (console paths go to the console).
    pub fn handle(&self, req: &WebRequest) -> Reply {
        if console::owns_path(&req.path) {
            return self.console.handle(req);
        }
        if req.path == crate::web::metrics::PATH {
            return crate::web::metrics::handle(&self.monitor, req);
        }
        let route = Route::parse(&req.path);
        answer(req, self.default_lang, form_problem, |ctx| {
            self.dispatch(ctx, route)
        })
    }

    fn dispatch(&self, ctx: &Ctx<'_>, route: Route) -> Reply {
        let method = match ctx.req.method {
            Method::Head => Method::Get,
            other => other,
        };
        match (method, route) {
            (Method::Get, Route::Static(name)) => match assets::find(name) {
                Some(asset) => assets::serve(asset),
                None => pages::problem(ctx.lang, Problem::NotFound, None),
            },
            (Method::Get, Route::Root) => match self.has_live_session(ctx) {
                true => Reply::see_other("/mail"),
                false => Reply::see_other("/login"),
            },
            (Method::Get, Route::Login) => login::show(self, ctx),
            (Method::Post, Route::Login) => login::submit(self, ctx),
            (Method::Post, Route::Logout) => login::logout(self, ctx),
            (Method::Get, Route::Inbox) => self.gated(ctx, mailbox::inbox),
            (Method::Get, Route::Compose) => self.gated(ctx, compose::show),
            (Method::Post, Route::Compose) => self.gated(ctx, send::submit),
            (Method::Post, Route::Actions) => self.gated(ctx, actions::submit),
            (Method::Get, Route::Folders) => self.gated(ctx, folders_page::show),
            (Method::Post, Route::Folders) => self.gated(ctx, folders_page::submit),
            (Method::Get, Route::Settings) => self.gated(ctx, settings::show),
            (Method::Get, Route::Search) => self.gated(ctx, search::show),
            (Method::Post, Route::Settings) => self.gated(ctx, settings::submit),
            (Method::Get, Route::Contacts) => self.gated(ctx, contacts_page::show),
            (Method::Post, Route::Contacts) => self.gated(ctx, contacts_page::submit),
            (Method::Get, Route::Suggest) => self.gated(ctx, suggest::show),
            (Method::Get, Route::Message(id)) => {
                self.gated(ctx, |w, c, s| mailbox::message(w, c, s, &id))
            }
            (Method::Get, Route::MessageBody(id)) => {
                self.gated(ctx, |w, c, s| mailbox::body(w, c, s, &id))
            }
            (Method::Get, Route::MessageRaw(id)) => {
                self.gated(ctx, |w, c, s| mailbox::raw(w, c, s, &id))
            }
            (_, Route::NotFound) => pages::problem(ctx.lang, Problem::NotFound, None),
            (_, _) => pages::problem(ctx.lang, Problem::Method, None),
        }
    }

    /// Runs `page` for the logged-in user, or answers for the missing
    /// session. The page speaks the language the user saved in their
    /// settings, if any, whatever the browser asks for.
    fn gated(
        &self,
        ctx: &Ctx<'_>,
        page: impl FnOnce(&Webmail, &Ctx<'_>, &Session) -> Reply,
    ) -> Reply {
        match self.require_session(ctx) {
            Ok(session) => match self.saved_language(&session.user) {
                Some(lang) if lang != ctx.lang => {
                    let ctx = Ctx {
                        req: ctx.req,
                        lang,
                        query: ctx.query.clone(),
                        now: ctx.now,
                    };
                    page(self, &ctx, &session)
                }
                _ => page(self, ctx, &session),
            },
            Err(reply) => reply,
        }
    }

    /// The language `user` chose in their settings, if they chose one.
    pub(super) fn saved_language(&self, user: &str) -> Option<Lang> {
        match self.directory.user_settings(user) {
            Ok(settings) => settings.language.as_deref().and_then(Lang::parse),
            Err(err) => {
                tracing::error!(%err, "user settings unreadable");
                None
            }
        }
    }

    /// True when the request carries a live session; leaves any notice for
    /// the login page (so `/` -> `/login` still shows why a session ended).
    fn has_live_session(&self, ctx: &Ctx<'_>) -> bool {
        ctx.req
            .cookie(session::COOKIE)
            .is_some_and(|token| self.sessions.is_live(token, ctx.now))
    }

    /// The live session of this request, or why there is none. A notice
    /// (ended elsewhere, expired) is reported once.
    fn session_state(&self, ctx: &Ctx<'_>) -> Result<Session, NoSession> {
        let Some(token) = ctx.req.cookie(session::COOKIE) else {
            return Err(NoSession::NoCookie);
        };
        let t = ctx.lang.catalog();
        match self.sessions.lookup(token, ctx.now) {
            SessionLookup::Active(session) => Ok(session),
            SessionLookup::Unknown => Err(NoSession::Stale(None)),
            SessionLookup::EndedElsewhere { at, ip } => Err(NoSession::Stale(Some(t.fill(
                "login.ended_elsewhere",
                &[
                    ("time", &crate::web::format::date_time(at)),
                    ("ip", &ip.to_string()),
                ],
            )))),
            SessionLookup::Expired => Err(NoSession::Stale(Some(t.fill(
                "login.expired",
                &[(
                    "minutes",
                    &self.config.mailbox.session_idle_minutes.to_string(),
                )],
            )))),
        }
    }

    /// The live session, or the reply for its absence: the login page with a
    /// notice when it was ended elsewhere or expired (R6), else a redirect.
    fn require_session(&self, ctx: &Ctx<'_>) -> Result<Session, Reply> {
        match self.session_state(ctx) {
            Ok(session) => Ok(session),
            Err(NoSession::NoCookie) => Err(Reply::see_other("/login")),
            Err(NoSession::Stale(None)) => Err(clear_session(Reply::see_other("/login"))),
            Err(NoSession::Stale(Some(notice))) => {
                Err(clear_session(login::page(ctx, 200, "", Some(notice), None)))
            }
        }
    }
}

/// Why a request has no live session.
enum NoSession {
    NoCookie,
    /// A cookie that no longer stands for a session, with the notice to show
    /// (ended elsewhere, expired), if any.
    Stale(Option<String>),
}

/// Tells the browser to forget its session cookie.
fn clear_session(reply: Reply) -> Reply {
    reply.with_header("Set-Cookie", session_cookie(session::COOKIE, "", Some(0)))
}

/// The page for a malformed query or form.
pub fn form_problem(lang: Lang, err: &FormError) -> Reply {
    tracing::debug!(%err, "malformed form or query");
    match err {
        FormError::TooLarge { .. } => pages::problem(lang, Problem::TooLarge, None),
        _ => pages::problem(lang, Problem::BadRequest, None),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The clock the handlers use, for tests elsewhere in `web`.
#[cfg(test)]
pub(crate) fn unix_now_for_tests() -> i64 {
    unix_now()
}

/// The static asset named by a route, for tests.
#[cfg(test)]
fn asset_of(route: &Route) -> Option<&'static assets::Asset> {
    match route {
        Route::Static(name) => assets::find(name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_routes() {
        assert_eq!(Route::parse("/"), Route::Root);
        assert_eq!(Route::parse("/login"), Route::Login);
        assert_eq!(Route::parse("/logout"), Route::Logout);
        assert_eq!(Route::parse("/mail"), Route::Inbox);
        assert_eq!(Route::parse("/mail/compose"), Route::Compose);
        assert_eq!(Route::parse("/mail/actions"), Route::Actions);
        assert_eq!(Route::parse("/mail/folders"), Route::Folders);
        assert_eq!(Route::parse("/mail/search"), Route::Search);
        assert_eq!(Route::parse("/mail/search/"), Route::NotFound);
        assert_eq!(Route::parse("/mail/contacts"), Route::Contacts);
        assert_eq!(Route::parse("/mail/suggest"), Route::Suggest);
        assert_eq!(Route::parse("/mail/folders/"), Route::NotFound);
        assert_eq!(Route::parse("/mail/compose/"), Route::NotFound);
        assert_eq!(Route::parse("/mail/"), Route::NotFound);
        assert_eq!(Route::parse("/login/"), Route::NotFound);
        assert_eq!(Route::parse("//mail"), Route::NotFound);
        assert_eq!(Route::parse(""), Route::NotFound);
    }

    #[test]
    fn static_routes_only_name_embedded_assets() {
        let route = Route::parse("/static/webmail.css");
        assert_eq!(asset_of(&route).map(|a| a.name), Some("webmail.css"));
        assert_eq!(Route::parse("/static/../Cargo.toml"), Route::NotFound);
        assert_eq!(Route::parse("/static/%2e%2e/x"), Route::NotFound);
        assert_eq!(Route::parse("/static/"), Route::NotFound);
    }

    #[test]
    fn message_routes_parse_store_ids() {
        let id: MessageId = "node-a.2a".parse().unwrap();
        assert_eq!(
            Route::parse("/mail/message/node-a.2a"),
            Route::Message(id.clone())
        );
        assert_eq!(
            Route::parse("/mail/message/node-a.2a/body"),
            Route::MessageBody(id)
        );
        // One spelling per id: no upper case, no leading zeros.
        assert_eq!(Route::parse("/mail/message/node-a.2A"), Route::NotFound);
        assert_eq!(Route::parse("/mail/message/node-a.02a"), Route::NotFound);
    }

    #[test]
    fn bad_message_ids_are_not_found() {
        for path in [
            "/mail/message/",
            "/mail/message/../../etc/passwd",
            "/mail/message/%00",
            "/mail/message/<script>",
            "/mail/message/x/body/extra",
            "/mail/message/x/raw",
        ] {
            assert_eq!(Route::parse(path), Route::NotFound, "{path}");
        }
    }
}
