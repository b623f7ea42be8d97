//! The webmail's first pages through the real binary over HTTPS: login,
//! inbox with paging, message view, logout, one session per user (R6), and
//! the security headers every page carries.

mod common;

use common::*;

fn send(node: &Node, to: &str, subject: &str, body: &str) {
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "office@example.org",
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        body,
    ]);
    assert!(ok, "{t}");
}

#[test]
fn login_page_is_secure_and_wrong_passwords_are_refused() {
    let node = Node::with_users();
    let web = Web::new(&node);
    let page = web.get("/login");
    assert_eq!(page.status, 200);
    let h = page.headers.to_ascii_lowercase();
    assert!(
        h.contains("content-security-policy: default-src 'none'"),
        "{h}"
    );
    assert!(h.contains("x-content-type-options: nosniff"), "{h}");
    assert!(h.contains("strict-transport-security"), "{h}");
    assert!(
        page.body.contains("lang=\"ko\""),
        "Korean is the default language"
    );

    // A POST without the CSRF token is refused.
    let r = web.post(
        "/login",
        &[
            ("address", "alice@campus.test"),
            ("password", &password_of("alice")),
        ],
    );
    assert!(r.status == 400 || r.status == 403, "status {}", r.status);

    let (status, body) = web.login("alice@campus.test", "wrong-password");
    assert_ne!(status, 303, "{body}");
    assert_eq!(
        web.get("/mail").status,
        303,
        "no session after a failed login"
    );

    let (status, _) = web.login("alice@campus.test", &password_of("alice"));
    assert_eq!(status, 303);
    // The jar now holds a Secure, HttpOnly, SameSite session cookie.
    let login_headers = {
        let w = Web::new(&node);
        let page = w.get("/login");
        let token = Web::csrf_of(&page.body);
        w.post(
            "/login",
            &[
                ("address", "bob@campus.test"),
                ("password", &password_of("bob")),
                ("csrf_token", &token),
            ],
        )
        .headers
        .to_ascii_lowercase()
    };
    let cookie = login_headers
        .lines()
        .find(|l| l.starts_with("set-cookie: cm_session="))
        .unwrap_or_else(|| panic!("no session cookie: {login_headers}"));
    assert!(
        cookie.contains("httponly")
            && cookie.contains("secure")
            && cookie.contains("samesite=strict"),
        "{cookie}"
    );

    // English on request.
    let en = Web::new(&node).get("/login?lang=en");
    assert!(en.body.contains("lang=\"en\""), "{}", en.body);
}

#[test]
fn http_redirects_to_https() {
    let node = Node::with_users();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://127.0.0.1:{}/mail?page=2", node.ports.http))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        format!("301 https://127.0.0.1:{}/mail?page=2", node.ports.https)
    );
}

#[test]
fn inbox_pages_views_and_logout() {
    let mut node = Node::new();
    let text = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(
        &node.config,
        text.replace("page_size = 50", "page_size = 2"),
    )
    .unwrap();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.start("all");
    for n in 1..=3 {
        send(
            &node,
            &address_of("alice"),
            &format!("Notice number {n}"),
            "Body <b>not bold</b>",
        );
    }
    let web = node.web_login("alice");
    wait_until(30, || {
        (web.get("/mail?page=2").body.contains("Notice number 1")).then_some(())
    })
    .expect("three messages delivered");
    // Newest first, two per page.
    let first = web.inbox();
    assert!(
        first.contains("Notice number 3") && first.contains("Notice number 2"),
        "{first}"
    );
    assert!(!first.contains("Notice number 1"), "{first}");
    assert!(first.contains("page=2"), "a link to the next page: {first}");

    // Opening a message shows it escaped and marks it read.
    let link = web.message_links()[0].clone();
    let view = web.get(&link);
    assert_eq!(view.status, 200);
    let escaped = view.body.contains("Body &lt;b&gt;not bold&lt;/b&gt;")
        || view.body.contains("Body &#60;b&#62;not bold&#60;/b&#62;");
    assert!(escaped, "{}", view.body);
    assert!(!view.body.contains("<b>not bold</b>"));

    // Ids from the URL are checked.
    assert_eq!(web.get("/mail/message/..%2F..%2Fetc%2Fpasswd").status, 404);
    assert_eq!(web.get("/mail/message/not-an-id").status, 404);

    // Logout needs the CSRF token and ends the session.
    let token = Web::csrf_of(&web.inbox());
    assert_ne!(web.post("/logout", &[]).status, 303);
    assert_eq!(web.post("/logout", &[("csrf_token", &token)]).status, 303);
    assert_eq!(web.get("/mail").status, 303, "logged out");
}

#[test]
fn a_new_login_ends_the_other_session_and_tells_it_why() {
    let node = Node::with_users();
    let first = node.web_login("alice");
    assert_eq!(first.get("/mail").status, 200);
    let _second = node.web_login("alice");
    let r = first.get("/mail");
    // The first browser is sent away, and told why: time and IP of the other login.
    let page = if r.status == 303 {
        first.get("/login")
    } else {
        r
    };
    assert!(page.body.contains("127.0.0.1"), "{}", page.body);
    assert_eq!(first.get("/mail").status, 303, "the old session is over");
}

#[test]
fn settings_show_recent_logins_and_change_the_password() {
    let node = Node::with_users();
    let alice = node.web_login("alice");
    let page = alice.get("/mail/settings?lang=en");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Recent logins"), "{}", page.body);
    assert!(
        page.body.contains("127.0.0.1"),
        "the login's address: {}",
        page.body
    );
    let token = Web::csrf_of(&page.body);
    let change = |current: &str, new: &str, again: &str, token: &str| {
        alice.post(
            "/mail/settings?lang=en",
            &[
                ("csrf_token", token),
                ("current", current),
                ("new", new),
                ("again", again),
            ],
        )
    };
    let old = password_of("alice");
    // No CSRF token: refused, nothing changes.
    let forged = change(&old, "brand-new-pass", "brand-new-pass", "");
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong = change(
        "not-my-password",
        "brand-new-pass",
        "brand-new-pass",
        &token,
    );
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.body.contains("current password is wrong"),
        "{}",
        wrong.body
    );
    let typo = change(&old, "brand-new-pass", "brand-new-pasz", &token);
    assert!(typo.body.contains("not the same"), "{}", typo.body);
    let short = change(&old, "short", "short", &token);
    assert!(short.body.contains("too short"), "{}", short.body);
    let ok = change(&old, "brand-new-pass", "brand-new-pass", &token);
    assert_eq!(ok.status, 303, "{}", ok.body);
    // The old password no longer works; the new one does.
    let fresh = Web::new(&node);
    assert_eq!(fresh.login(&address_of("alice"), &old).0, 401);
    assert_eq!(fresh.login(&address_of("alice"), "brand-new-pass").0, 303);
}

#[test]
fn conversations_are_counted_in_the_list_and_shown_under_a_message() {
    let node = Node::with_users();
    let alice = address_of("alice");
    send_with(
        &node,
        &alice,
        &["Message-ID: <root@example.org>"],
        "Lab meeting",
    );
    send_with(
        &node,
        &alice,
        &[
            "Message-ID: <r1@example.org>",
            "In-Reply-To: <root@example.org>",
            "References: <root@example.org>",
        ],
        "Re: Lab meeting <b>moved</b>",
    );
    send_with(
        &node,
        &alice,
        &["Message-ID: <other@example.org>"],
        "Unrelated",
    );
    let web = node.web_login("alice");
    let inbox = wait_until(30, || {
        let page = web.inbox();
        page.contains("Unrelated").then_some(page)
    })
    .expect("three messages delivered");
    // Both messages of the conversation carry its size; the other none.
    assert_eq!(
        inbox.matches("class=\"thread-count\"").count(),
        2,
        "{inbox}"
    );
    assert!(inbox.contains("이 대화의 메일 2통"), "{inbox}");
    let links = web.message_links();
    assert_eq!(links.len(), 3);
    // Which link is which, by the heading of its page (the queue may
    // deliver them in any order).
    let heading = |page: &str| {
        let start = page.find("<h1 class=\"subject\">").unwrap_or(0);
        let end = page[start..]
            .find("</h1>")
            .map_or(page.len(), |e| start + e);
        page[start..end].to_string()
    };
    let find = |pred: &dyn Fn(&str) -> bool| {
        links
            .iter()
            .find(|l| pred(&heading(&web.get(l).body)))
            .cloned()
            .expect("a message with that subject")
    };
    let root = find(&|h: &str| h.contains("Lab meeting") && !h.contains("Re:"));
    let reply = find(&|h: &str| h.contains("Re: Lab meeting"));
    let alone = find(&|h: &str| h.contains("Unrelated"));
    let view = web.get(&root).body;
    assert!(view.contains("class=\"card conversation\""), "{view}");
    assert!(view.contains("이 대화 (메일 2통)"), "{view}");
    assert!(view.contains(&format!("href=\"{reply}\"")), "{view}");
    assert!(view.contains("aria-current=\"true\""), "{view}");
    // Subjects from mail are shown escaped there too.
    assert!(!view.contains("<b>moved</b>"), "{view}");
    // A message alone has no conversation section.
    let alone = web.get(&alone).body;
    assert!(!alone.contains("class=\"card conversation\""), "{alone}");
}
