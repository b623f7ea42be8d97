//! End-to-end tests of the console through the real web stack (TLS front,
//! internal server, workers) with a real store and directory, reusing the
//! webmail's test harness (`web::e2e_tests`).

use crate::web::e2e_tests::{hidden_token, setup, Response, Stack};

/// The console's login flow; returns the login reply.
fn admin_login(stack: &Stack, name: &str, password: &str) -> Response {
    let form = stack.https("GET", "/admin/login", "", None);
    assert_eq!(form.status, 200, "{}", form.body);
    let cookie = form
        .cookie("cm_admin_login_csrf")
        .expect("the login form sets its CSRF cookie");
    let token = hidden_token(&form.body);
    let body = format!(
        "name={}&password={}&csrf_token={token}",
        crate::web::form::encode(name),
        crate::web::form::encode(password)
    );
    stack.https(
        "POST",
        "/admin/login",
        &format!("cm_admin_login_csrf={cookie}"),
        Some(&body),
    )
}

fn admin_password(stack: &Stack) -> String {
    stack
        .web
        .webmail()
        .directory
        .ensure_admin()
        .unwrap()
        .expect("a fresh directory has no admin yet")
}

fn audit_lines(stack: &Stack) -> String {
    let dir = stack.web.webmail().config.node.data_dir.join("audit");
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

#[test]
fn admin_login_create_disable_audit_and_logout() {
    let stack = setup();
    let password = admin_password(&stack);

    // Not signed in: GET goes to the login form, POST is refused.
    let dash = stack.https("GET", "/admin", "", None);
    assert_eq!(dash.status, 303);
    assert_eq!(dash.header("Location"), Some("/admin/login"));
    let post = stack.https(
        "POST",
        "/admin/users",
        "",
        Some("address=x%40example.ac.kr"),
    );
    assert_eq!(post.status, 403);

    // The wrong password: a clear error, no session.
    let wrong = admin_login(&stack, "admin", "not the password");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("비밀번호가 맞지 않습니다"),
        "{}",
        wrong.body
    );
    assert!(wrong.cookie("cm_admin").is_none());

    // A login form without its CSRF cookie is refused before the password.
    let forged = stack.https(
        "POST",
        "/admin/login",
        "",
        Some(&format!("name=admin&password={password}&csrf_token=x")),
    );
    assert_eq!(forged.status, 403);
    assert!(forged.cookie("cm_admin").is_none());

    let ok = admin_login(&stack, "admin", &password);
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("Location"), Some("/admin"));
    let set = ok
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with("cm_admin="))
        .unwrap();
    assert!(set.1.contains("Path=/admin") && set.1.contains("HttpOnly"));
    assert!(set.1.contains("Secure") && set.1.contains("SameSite=Strict"));
    let jar = format!("cm_admin={}", ok.cookie("cm_admin").unwrap());

    let dash = stack.https("GET", "/admin", &jar, None);
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("example.ac.kr"));
    assert!(dash.body.contains("사용자 2명"), "{}", dash.body);
    assert!(dash
        .header("Content-Security-Policy")
        .unwrap()
        .contains("default-src 'none'"));
    let csrf = hidden_token(&dash.body);

    // Create a user through the form; a CSRF-less POST changes nothing.
    let no_csrf = stack.https(
        "POST",
        "/admin/users",
        &jar,
        Some("address=kim%40example.ac.kr&password=kim-password"),
    );
    assert_eq!(no_csrf.status, 403);
    let created = stack.https(
        "POST",
        "/admin/users",
        &jar,
        Some(&format!(
            "address=kim%40example.ac.kr&password=kim-password&csrf_token={csrf}"
        )),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.contains("kim@example.ac.kr"));
    let kim = stack.login("kim@example.ac.kr", "kim-password");
    assert_eq!(kim.status, 303, "the new user can log in to webmail");

    let unknown = stack.https(
        "POST",
        "/admin/users",
        &jar,
        Some(&format!(
            "address=lee%40other.example&password=lee-password&csrf_token={csrf}"
        )),
    );
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body.contains("campusmail domain add other.example"),
        "{}",
        unknown.body
    );

    let list = stack.https("GET", "/admin/users?q=kim", &jar, None);
    assert_eq!(list.status, 200);
    assert!(list.body.contains("kim@example.ac.kr"));
    assert!(!list.body.contains("hong@example.ac.kr"));

    // Disable hong while hong's webmail session is live: it ends.
    let hong = stack.login("hong@example.ac.kr", "correct horse");
    let hong_jar = format!("cm_session={}", hong.cookie("cm_session").unwrap());
    assert_eq!(stack.https("GET", "/mail", &hong_jar, None).status, 200);
    let refused = stack.https(
        "POST",
        "/admin/users/disable",
        &jar,
        Some("address=hong%40example.ac.kr&csrf_token=wrong"),
    );
    assert_eq!(refused.status, 403);
    assert_eq!(stack.https("GET", "/mail", &hong_jar, None).status, 200);
    let disabled = stack.https(
        "POST",
        "/admin/users/disable",
        &jar,
        Some(&format!("address=hong%40example.ac.kr&csrf_token={csrf}")),
    );
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert!(
        disabled.body.contains("웹메일 세션도 종료"),
        "{}",
        disabled.body
    );
    let after = stack.https("GET", "/mail", &hong_jar, None);
    assert_eq!(after.status, 303);
    assert_eq!(after.header("Location"), Some("/login"));
    assert_eq!(
        stack.login("hong@example.ac.kr", "correct horse").status,
        401
    );

    // The audit log has one line per action, and the console shows them.
    let lines = audit_lines(&stack);
    for expected in [
        r#""action":"login","target":"","outcome":"wrong_password""#,
        r#""action":"login","target":"","outcome":"ok""#,
        r#""action":"user_create","target":"kim@example.ac.kr","outcome":"ok""#,
        r#""action":"user_create","target":"lee@other.example","outcome":"unknown_domain""#,
        r#""action":"user_disable","target":"hong@example.ac.kr","outcome":"ok_session_ended""#,
    ] {
        assert!(lines.contains(expected), "{expected} in\n{lines}");
    }
    assert!(!lines.contains(&password) && !lines.contains("kim-password"));
    let audit = stack.https("GET", "/admin/audit?q=user_disable", &jar, None);
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains("hong@example.ac.kr"));
    assert!(!audit.body.contains("kim@example.ac.kr"));

    // Logout needs the token, then the cookie is worth nothing.
    assert_eq!(
        stack
            .https("POST", "/admin/logout", &jar, Some("csrf_token=x"))
            .status,
        403
    );
    let out = stack.https(
        "POST",
        "/admin/logout",
        &jar,
        Some(&format!("csrf_token={csrf}")),
    );
    assert_eq!(out.status, 303);
    assert_eq!(out.header("Location"), Some("/admin/login"));
    assert_eq!(stack.https("GET", "/admin", &jar, None).status, 303);
    assert!(audit_lines(&stack).contains(r#""action":"logout","target":"","outcome":"ok""#));
}

#[test]
fn a_webmail_session_gets_no_console_page() {
    let stack = setup();
    admin_password(&stack);
    let hong = stack.login("hong@example.ac.kr", "correct horse");
    let token = hong.cookie("cm_session").unwrap();
    // Neither the user's cookie nor the same token under the admin name.
    for jar in [format!("cm_session={token}"), format!("cm_admin={token}")] {
        for path in ["/admin", "/admin/users", "/admin/audit", "/admin/nothing"] {
            let page = stack.https("GET", path, &jar, None);
            if jar.starts_with("cm_session=") {
                // A signed-in mail user is told the console is not theirs.
                assert_eq!(page.status, 403, "{path} with {jar}");
                assert!(page.body.contains("웹메일 사용자"), "{}", page.body);
            } else {
                assert_eq!(page.status, 303, "{path} with {jar}");
                assert_eq!(page.header("Location"), Some("/admin/login"));
            }
        }
        for path in ["/admin/users", "/admin/users/disable", "/admin/logout"] {
            let post = stack.https("POST", path, &jar, Some("address=hong%40example.ac.kr"));
            assert_eq!(post.status, 403, "{path} with {jar}");
        }
    }
    assert_eq!(
        stack
            .https("GET", "/mail", &format!("cm_session={token}"), None)
            .status,
        200
    );
    // The console's login page is reachable and in English when asked.
    let page = stack.https("GET", "/admin/login?lang=en", "", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(page.body.contains("action=\"/admin/login\""));
}

#[test]
fn storage_page_shows_each_data_directory_to_admins_only() {
    let stack = setup();
    let password = admin_password(&stack);
    let anonymous = stack.https("GET", "/admin/storage", "", None);
    assert_eq!(anonymous.status, 303);
    let ok = admin_login(&stack, "admin", &password);
    let jar = format!("cm_admin={}", ok.cookie("cm_admin").unwrap());
    let page = stack.https("GET", "/admin/storage?lang=en", &jar, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Mail storage"), "{}", page.body);
    // The one data directory of the test store (`<temp>/store`).
    assert!(page.body.contains("/store</code>"), "{}", page.body);
    assert!(page.body.contains("in use"), "{}", page.body);
    assert!(page.body.contains("<meter"), "{}", page.body);
    // One directory holds everything it is meant to.
    assert!(page.body.contains("(target 100%)"), "{}", page.body);
    assert!(
        page.body.contains("has not been checked yet"),
        "{}",
        page.body
    );
    // After a check the page says when and what it found.
    stack.store.fsck(false).unwrap();
    let page = stack.https("GET", "/admin/storage?lang=en", &jar, None);
    assert!(
        page.body.contains("Last check (campusmail store fsck)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("no problems left"), "{}", page.body);
}
