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
