//! What the pair tests need of a webmail beyond `Web`: the rows of a
//! message list page (subject, folder, id, read and flagged state), and
//! sessions on both nodes of a pair that log in again when a later login
//! on the other node ended them (R6: one live session per user).
//!
//! Reads only pages of the node under test; nothing here asserts timings.

use std::collections::HashMap;

use super::{address_of, html_unescape, password_of, Node, Web};

/// One message as a node's webmail lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub subject: String,
    /// The name of the folder whose list showed it.
    pub folder: String,
    /// The message id (`node-a.2f`), the same on both nodes.
    pub id: String,
    pub seen: bool,
    pub flagged: bool,
}

/// The rows of a message list page (`templates/webmail/inbox.html`): the
/// row's class says unread and flagged, the checkbox holds the id, the
/// link's text is the subject.
pub fn rows_on(page: &str, folder: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for chunk in page.split("<tr class=\"").skip(1) {
        let Some(class_end) = chunk.find('"') else {
            continue;
        };
        let class = &chunk[..class_end];
        let Some(id) = between(chunk, "name=\"m\" value=\"", "\"") else {
            continue;
        };
        let Some(link) = chunk.find("href=\"/mail/message/") else {
            continue;
        };
        let Some(subject) = between(&chunk[link..], ">", "<") else {
            continue;
        };
        rows.push(Row {
            subject: html_unescape(subject.trim()),
            folder: folder.to_string(),
            id: id.to_string(),
            seen: !class.split_whitespace().any(|c| c == "unread"),
            flagged: class.split_whitespace().any(|c| c == "flagged"),
        });
    }
    rows
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// Webmail sessions on both nodes for both users. A login on one node
/// ends the same user's older session on the other once it replicates
/// (R6), so a request that finds its session gone logs in again.
pub struct Webmails {
    /// The nodes' webmail ports (a node keeps its port across restarts).
    https: [u16; 2],
    sessions: HashMap<(usize, &'static str), Web>,
    /// How many logins were made (the first ones included).
    pub logins: usize,
}

impl Webmails {
    pub fn new(nodes: [&Node; 2]) -> Webmails {
        Webmails {
            https: nodes.map(|node| node.ports.https),
            sessions: HashMap::new(),
            logins: 0,
        }
    }

    /// The session of `user` on node `n`, logged in if there is none.
    pub fn session(&mut self, n: usize, user: &'static str) -> &Web {
        let (https, logins) = (self.https[n], &mut self.logins);
        self.sessions.entry((n, user)).or_insert_with(|| {
            *logins += 1;
            let web = Web::at(https);
            let (status, body) = web.login(&address_of(user), &password_of(user));
            assert_eq!(status, 303, "login of {user} on node {n} failed: {body}");
            web
        })
    }

    /// A page of the logged-in webmail.
    pub fn get(&mut self, n: usize, user: &'static str, path: &str) -> String {
        for _ in 0..3 {
            let r = self.session(n, user).get(path);
            if r.status == 200 && r.body.contains("action=\"/logout\"") {
                return r.body;
            }
            // A login page or a redirect to it: the session was ended.
            assert!(
                r.status == 303 || r.body.contains("action=\"/login\""),
                "GET {path} on node {n} as {user}: {} {}",
                r.status,
                r.body
            );
            self.sessions.remove(&(n, user));
        }
        panic!("GET {path} on node {n} as {user}: the session kept ending");
    }

    /// POSTs a message action; returns where the browser is sent.
    pub fn act(&mut self, n: usize, user: &'static str, fields: &[(&str, &str)]) -> String {
        self.post(n, user, "/mail/actions", fields)
    }

    /// POSTs a form of the webmail (the session's CSRF token added), which
    /// must answer with a redirect; returns where it sends the browser.
    pub fn post(
        &mut self,
        n: usize,
        user: &'static str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> String {
        for _ in 0..3 {
            let token = Web::csrf_of(&self.get(n, user, "/mail?view=messages"));
            let mut all = vec![("csrf_token", token.as_str())];
            all.extend_from_slice(fields);
            let r = self.session(n, user).post(path, &all);
            let location = r
                .headers
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("location")
                        .then(|| value.trim().to_string())
                })
                .unwrap_or_default();
            if r.status == 303 && !location.starts_with("/login") {
                return location;
            }
            assert!(
                r.status == 303 || r.body.contains("action=\"/login\""),
                "POST {path} {fields:?} on node {n} as {user}: {} {}",
                r.status,
                r.body
            );
            self.sessions.remove(&(n, user));
        }
        panic!("POST {path} {fields:?} on node {n} as {user}: the session kept ending");
    }

    /// Every message `user` has on node `n`, in every folder a test
    /// message can be in.
    pub fn view(&mut self, n: usize, user: &'static str, folders: &[(String, String)]) -> Vec<Row> {
        let mut rows = Vec::new();
        for (id, name) in folders {
            let page = self.get(n, user, &format!("/mail?folder={id}&view=messages"));
            rows.extend(rows_on(&page, name));
        }
        rows
    }
}
