//! The console's directory pages in a real browser (headless Chromium
//! through chromedriver) on a phone-sized screen: the admin signs in, edits
//! a user, defines a class, adds a group, imports a CSV file and deletes a
//! user after the confirmation page. Checks what curl cannot: the CSP lets
//! the stylesheet apply, the forms post as a browser posts them (the
//! multipart upload included), and no page scrolls sideways on a phone.
//! A screenshot of every step lands in target/tmp (the last one shows where
//! a failing walk stopped).

mod common;

use common::browser::Browser;
use common::*;

struct Walk {
    browser: Browser,
    base: String,
    step: std::cell::Cell<u32>,
}

impl Walk {
    fn goto(&self, path: &str) {
        self.browser.goto(&format!("{}{path}", self.base));
    }

    /// Screenshot, stylesheet applied, nothing wider than the phone.
    fn check_page(&self, name: &str) -> String {
        let n = self.step.get() + 1;
        self.step.set(n);
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        self.browser
            .screenshot(&dir.join(format!("console-directory-{n:02}-{name}.png")));
        let background = self
            .browser
            .eval("return getComputedStyle(document.body).backgroundColor");
        assert_eq!(
            background, "rgb(245, 247, 250)",
            "{name}: stylesheet not applied"
        );
        let fits = self
            .browser
            .eval("return document.documentElement.scrollWidth <= window.innerWidth");
        assert_eq!(fits, true, "{name}: the page scrolls sideways on a phone");
        self.browser.source()
    }

    fn submit(&self, form: &str, suffix: &str) -> String {
        self.browser
            .click(&format!("form[action='{form}'] button[type=submit]"));
        self.browser.url_after_navigation(suffix)
    }
}

#[test]
fn an_admin_walks_the_directory_pages_on_a_phone() {
    let node = Node::with_users();
    let password = node.admin_password.clone().expect("admin password printed");
    let walk = Walk {
        browser: Browser::start(390, 844),
        base: format!("https://127.0.0.1:{}", node.ports.https),
        step: std::cell::Cell::new(0),
    };
    let b = &walk.browser;

    walk.goto("/admin/login?lang=en");
    b.type_into("#name", "admin");
    b.type_into("#password", &password);
    walk.submit("/admin/login", "/admin");

    // The users page leads to alice's own page; her name is saved.
    walk.goto("/admin/users");
    let users = walk.check_page("users");
    assert!(users.contains("alice@campus.test"), "{users}");
    b.click("a[href='/admin/users/edit?address=alice%40campus.test']");
    b.url_after_navigation("address=alice%40campus.test");
    walk.check_page("user-page");
    b.type_into("#display_name", "Alice Kim");
    walk.submit("/admin/users/edit", "/admin/users/edit");
    let saved = walk.check_page("user-saved");
    assert!(saved.contains("class=\"alert notice\""), "{saved}");
    assert_eq!(
        b.eval("return document.querySelector('#display_name').value"),
        "Alice Kim"
    );

    // A class, shown in the licence view.
    walk.goto("/admin/classes");
    walk.check_page("classes");
    b.type_into("#name", "faculty");
    b.type_into("#quota_bytes", "5GB");
    b.type_into("#disable_after_days", "365");
    walk.submit("/admin/classes", "/admin/classes");
    let classes = walk.check_page("class-added");
    assert!(
        classes.contains("faculty") && classes.contains("5000000000"),
        "{classes}"
    );

    // A group with both users, typed one per line.
    walk.goto("/admin/aliases");
    b.type_into("#alias", "dept@campus.test");
    b.type_into("#members", "alice@campus.test\nbob@campus.test");
    walk.submit("/admin/aliases", "/admin/aliases");
    let aliases = walk.check_page("group-added");
    assert!(
        aliases.contains("dept@campus.test") && aliases.contains("2 members"),
        "{aliases}"
    );

    // A CSV upload through the browser's own multipart form.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.csv");
    std::fs::write(&file, "address,display_name\nnew@campus.test,새 학생\n").unwrap();
    walk.goto("/admin/users/import");
    walk.check_page("import");
    b.attach_file("#file", &file);
    walk.submit("/admin/users/import", "/admin/users/import");
    let imported = walk.check_page("imported");
    assert!(imported.contains("1 users imported"), "{imported}");

    // Deleting bob: the confirmation page states the retention rule.
    walk.goto("/admin/users/delete?address=bob%40campus.test");
    let confirm = walk.check_page("delete-confirm");
    assert!(confirm.contains("deleted for good"), "{confirm}");
    b.type_into("#admin_password", &password);
    walk.submit("/admin/users/delete", "/admin/users/delete");
    let deleted = walk.check_page("deleted");
    assert!(deleted.contains("bob@campus.test was deleted"), "{deleted}");
    assert!(!node
        .cli_ok(&["user", "list"], None)
        .contains("bob@campus.test"));

    // The domains page, in Korean.
    walk.goto("/admin/domains?lang=ko");
    let domains = walk.check_page("domains-ko");
    assert!(domains.contains("메일 도메인"), "{domains}");
    assert_eq!(b.eval("return document.documentElement.lang"), "ko");
}
