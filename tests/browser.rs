//! The webmail in a real browser (headless Chromium through chromedriver):
//! a student on a phone-sized screen follows the plain-HTTP address, logs
//! in, reads Korean and HTML mail, and logs out. This checks what curl
//! cannot: that the browser accepts our cookies and CSP, applies the
//! stylesheet, and that the pages fit a phone.

mod common;

use common::browser::Browser;
use common::*;

#[test]
fn a_student_on_a_phone_logs_in_reads_mail_and_logs_out() {
    let node = Node::with_users();
    send_fixture(&node, "euc-kr.eml");
    send_fixture(&node, "html-remote-images.eml");
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 2).then_some(()))
        .unwrap_or_else(|| panic!("fixtures not delivered: {}", node.log("all")));

    let browser = Browser::start(390, 844);
    // Screenshots land in target/tmp for a person to look at.
    let shot = |name: &str| {
        browser.screenshot(
            &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png")),
        )
    };

    // The plain-HTTP address leads to the HTTPS login page, in Korean.
    browser.goto(&format!("http://127.0.0.1:{}/", node.ports.http));
    let url = browser.url();
    assert!(
        url.starts_with(&format!("https://127.0.0.1:{}/", node.ports.https)),
        "{url}"
    );
    assert!(url.ends_with("/login"), "{url}");
    assert_eq!(browser.eval("return document.documentElement.lang"), "ko");

    // The stylesheet is allowed by the CSP and applied.
    let background = browser.eval("return getComputedStyle(document.body).backgroundColor");
    assert_eq!(background, "rgb(245, 247, 250)", "webmail.css not applied");

    // Wrong password: an error on the page, still on the login page.
    browser.type_into("#address", "alice@campus.test");
    browser.type_into("#password", "wrong-password");
    browser.click("button[type=submit]");
    let page = browser.source_containing("class=\"alert error\"");
    assert!(page.contains("class=\"alert error\""), "{page}");
    let url = browser.url();
    assert!(url.ends_with("/login"), "{url}");

    // Right password: the inbox, with the Korean subject decoded from EUC-KR.
    browser.type_into("#address", "alice@campus.test");
    browser.type_into("#password", &password_of("alice"));
    browser.click("button[type=submit]");
    let url = browser.url_after_navigation("/mail");
    assert!(url.ends_with("/mail"), "{url}");
    let inbox = browser.source();
    assert!(inbox.contains("수강 신청 안내"), "{inbox}");
    assert!(inbox.contains("장학금 신청 안내"), "{inbox}");
    shot("inbox-phone");

    // The page fits a phone: nothing wider than the screen.
    let fits = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(fits, true, "the inbox scrolls sideways on a phone");

    // Searching from the list's box: a word of the EUC-KR body finds that
    // message and not the other.
    browser.type_into("#quick-q", "금요일");
    browser.click("form.quicksearch button[type=submit]");
    let url = browser.url_after_navigation("/mail/search?q=%EA%B8%88%EC%9A%94%EC%9D%BC&folder=");
    assert!(url.contains("/mail/search?"), "{url}");
    let results = browser.source_containing("수강 신청 안내");
    assert!(results.contains("수강 신청 안내"), "{results}");
    assert!(!results.contains("장학금 신청 안내"), "{results}");
    shot("search-phone");
    let fits = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(fits, true, "the search page scrolls sideways on a phone");
    browser.goto(&format!("https://127.0.0.1:{}/mail", node.ports.https));

    // Reading the EUC-KR message.
    browser.click("a[href^='/mail/message/']:not([href$='body'])");
    let _ = browser.url();
    let mut view = browser.source();
    if !view.contains("수강 신청은 이번 주 금요일까지입니다.") {
        // The newest message is the HTML one; go back and open the other.
        browser.goto(&format!("https://127.0.0.1:{}/mail", node.ports.https));
        let links = browser.eval(
            "return Array.from(document.querySelectorAll(\"a[href^='/mail/message/']\")).map(a => a.getAttribute('href'))",
        );
        let second = links[1].as_str().unwrap_or_default().to_string();
        browser.goto(&format!("https://127.0.0.1:{}{second}", node.ports.https));
        view = browser.source();
    }
    assert!(
        view.contains("수강 신청은 이번 주 금요일까지입니다."),
        "{view}"
    );
    shot("message-phone");

    // Logging out ends the session: the inbox now leads to the login page.
    browser.click("form[action='/logout'] button");
    let url = browser.url_after_navigation("/login");
    assert!(url.ends_with("/login"), "{url}");
    browser.goto(&format!("https://127.0.0.1:{}/mail", node.ports.https));
    let url = browser.url_after_navigation("/login");
    assert!(url.ends_with("/login"), "{url}");
}

#[test]
fn html_mail_scripts_never_run_in_the_browser() {
    let node = Node::with_users();
    send_fixture(&node, "html-remote-images.eml");
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 1).then_some(()))
        .expect("HTML message delivered");
    let link = web.message_links()[0].clone();

    let browser = Browser::start(1280, 900);
    browser.goto(&format!("https://127.0.0.1:{}/login", node.ports.https));
    browser.type_into("#address", "alice@campus.test");
    browser.type_into("#password", &password_of("alice"));
    browser.click("button[type=submit]");
    // Signed in (the session cookie set) before going to the message.
    browser.url_after_navigation("/mail");
    browser.goto(&format!("https://127.0.0.1:{}{link}", node.ports.https));

    // The mail is in a sandboxed frame without scripts or same-origin rights.
    let sandbox = browser.eval("return document.querySelector('iframe').getAttribute('sandbox')");
    let sandbox = sandbox.as_str().unwrap_or_default();
    assert!(
        !sandbox.contains("allow-scripts") && !sandbox.contains("allow-same-origin"),
        "{sandbox}"
    );
    // The frame's document is not reachable from the page (opaque origin),
    // and the mail's script (which tries to navigate away) did not run.
    let reachable = browser.eval(
        "try { return document.querySelector('iframe').contentDocument !== null } catch (e) { return false }",
    );
    assert_eq!(reachable, false);
    let url = browser.url();
    assert!(url.ends_with(&link), "the page was navigated away: {url}");
}

#[test]
fn a_student_writes_korean_mail_with_an_attachment_on_a_phone() {
    let node = Node::with_users();
    let browser = Browser::start(390, 844);
    let base = format!("https://127.0.0.1:{}", node.ports.https);
    browser.goto(&format!("{base}/login"));
    browser.type_into("#address", "alice@campus.test");
    browser.type_into("#password", &password_of("alice"));
    browser.click("button[type=submit]");
    browser.url_after_navigation("/mail");

    // Compose is one click from the inbox, and works without scripts.
    browser.click("a[href='/mail/compose']");
    let url = browser.url_after_navigation("/mail/compose");
    assert!(url.ends_with("/mail/compose"), "{url}");
    let fits = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(fits, true, "the compose form scrolls sideways on a phone");

    // Enter in the address field does not send a half-written message.
    browser.type_into("#to", "bob@campus.test\u{E007}");
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(
        browser.url().ends_with("/mail/compose"),
        "{}",
        browser.url()
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("수강신청 안내.txt");
    std::fs::write(&file, "금요일까지 신청하세요.").unwrap();
    browser.type_into("#to", "bob@campus.test");
    browser.type_into("#subject", "수강 신청 안내");
    browser.type_into("#body", "안녕하세요.\n첨부 파일을 확인해 주세요.");
    browser.attach_file("#attachment", &file);
    browser
        .screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compose-phone.png"));
    browser.click("button[name=action][value=send]");
    let url = browser.url_after_navigation("/mail?folder=Sent&sent=1");
    assert!(
        url.ends_with("/mail?folder=Sent&sent=1"),
        "{url}: {}",
        browser.source()
    );
    assert!(
        browser.source().contains("수강 신청 안내"),
        "listed in Sent"
    );

    // Bob receives it with the attachment's Korean name intact.
    let bob = node.web_login("bob");
    let link = wait_until(30, || bob.message_links().first().cloned())
        .unwrap_or_else(|| panic!("not delivered: {}", node.log("all")));
    let raw = bob.get(&format!("{link}/raw")).body;
    let msg = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("parses");
    assert_eq!(msg.subject(), Some("수강 신청 안내"));
    let attachment = msg.attachment(0).expect("the attachment");
    use mail_parser::MimeHeaders;
    assert_eq!(attachment.attachment_name(), Some("수강신청 안내.txt"));
    assert_eq!(attachment.contents(), "금요일까지 신청하세요.".as_bytes());

    // Bob replies from the message page in the browser: the form comes
    // filled in, and the reply names the message it answers (RFC 5322
    // §3.6.4).
    browser.click("form[action='/logout'] button");
    browser.url_after_navigation("/login");
    browser.type_into("#address", "bob@campus.test");
    browser.type_into("#password", &password_of("bob"));
    browser.click("button[type=submit]");
    browser.url_after_navigation("/mail");
    browser.goto(&format!("{base}{link}"));
    browser.click("a[href^='/mail/compose?reply=']");
    browser.url_after_navigation(&format!(
        "reply={}",
        link.trim_start_matches("/mail/message/")
    ));
    let subject = browser.eval("return document.querySelector('#subject').value");
    assert_eq!(subject, "Re: 수강 신청 안내", "the reply's subject");
    let to = browser.eval("return document.querySelector('#to').value");
    assert!(
        to.as_str().is_some_and(|t| t.contains("alice@campus.test")),
        "{to}"
    );
    browser.type_into("#body", "확인했습니다.");
    browser.click("button[name=action][value=send]");
    browser.url_after_navigation("/mail?folder=Sent&sent=1");
    let alice = node.web_login("alice");
    let reply = wait_until(30, || {
        alice.message_links().into_iter().find_map(|l| {
            let raw = alice.get(&format!("{l}/raw")).body;
            raw.contains("In-Reply-To").then_some(raw)
        })
    })
    .unwrap_or_else(|| panic!("the reply did not arrive: {}", node.log("all")));
    let reply = mail_parser::MessageParser::default()
        .parse(reply.as_bytes())
        .expect("parses");
    assert_eq!(
        reply.in_reply_to().as_text(),
        msg.message_id(),
        "In-Reply-To names the message answered"
    );
}

#[test]
fn a_student_on_a_phone_files_two_messages_into_a_folder_and_deletes_one() {
    let node = Node::with_users();
    send_fixture(&node, "euc-kr.eml");
    send_fixture(&node, "html-remote-images.eml");
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 2).then_some(()))
        .unwrap_or_else(|| panic!("fixtures not delivered: {}", node.log("all")));

    let browser = Browser::start(390, 844);
    let base = format!("https://127.0.0.1:{}", node.ports.https);
    browser.goto(&format!("{base}/login"));
    browser.type_into("#address", "alice@campus.test");
    browser.type_into("#password", &password_of("alice"));
    browser.click("button[type=submit]");
    browser.url_after_navigation("/mail");

    // Make a folder from the folder list's "manage" link.
    browser.click("nav.folders a.manage");
    browser.url_after_navigation("/mail/folders");
    browser.type_into("#new-name", "장학금");
    browser.click("button[name=action][value=create]");
    browser.url_after_navigation("/mail/folders?done=created");
    let folder = browser.eval(
        "return Array.from(document.querySelectorAll('nav.folders a')).find(a => a.textContent.trim() === '장학금').getAttribute('href')",
    );
    let folder = folder.as_str().unwrap_or_default().to_string();
    assert!(folder.starts_with("/mail?folder="), "{folder}");
    let id = folder.trim_start_matches("/mail?folder=").to_string();

    // Select both messages, choose the folder, press Move.
    browser.goto(&format!("{base}/mail"));
    browser.click("#pick-1");
    browser.click("#pick-2");
    browser.eval(&format!(
        "document.querySelector('#target').value = '{id}'; return true"
    ));
    let fits = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(
        fits, true,
        "the list with its actions scrolls sideways on a phone"
    );
    browser.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("select-phone.png"));
    browser.click("button[name=action][value=move]");
    browser.url_after_navigation("done=move&n=2");
    assert!(
        browser.source().contains("메일 2통을 옮겼습니다"),
        "{}",
        browser.source()
    );

    // Both are in the folder now; delete one of them.
    browser.goto(&format!("{base}{folder}"));
    let listed = browser.eval("return document.querySelectorAll('input[name=m]').length");
    assert_eq!(listed, 2);
    browser.click("#pick-1");
    browser.click("button[name=action][value=delete]");
    browser.url_after_navigation("done=trash&n=1");
    let listed = browser.eval("return document.querySelectorAll('input[name=m]').length");
    assert_eq!(listed, 1);
    browser.goto(&format!("{base}/mail?folder=Trash"));
    let listed = browser.eval("return document.querySelectorAll('input[name=m]').length");
    assert_eq!(listed, 1, "{}", browser.source());
    // Every control on the list has a label.
    let unlabelled = browser.eval(
        "return Array.from(document.querySelectorAll('input:not([type=hidden]), select')).filter(e => !(e.labels && e.labels.length)).length",
    );
    assert_eq!(unlabelled, 0);
}

#[test]
fn a_student_on_a_phone_sets_language_signature_and_an_auto_reply() {
    let node = Node::with_users();
    let browser = Browser::start(390, 844);
    let base = format!("https://127.0.0.1:{}", node.ports.https);
    browser.goto(&format!("{base}/login"));
    browser.type_into("#address", "alice@campus.test");
    browser.type_into("#password", &password_of("alice"));
    browser.click("button[type=submit]");
    browser.url_after_navigation("/mail");
    browser.click("a[href='/mail/settings']");
    browser.url_after_navigation("/mail/settings");
    let fits = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(fits, true, "the settings page scrolls sideways on a phone");

    // Language: English on every page from now on.
    browser.eval("document.querySelector('#language-choice').value = 'en'; return true");
    browser.click("#language button[type=submit]");
    browser.url_after_navigation("/mail/settings?done=language");
    assert_eq!(browser.eval("return document.documentElement.lang"), "en");

    // Signature: typed in the form, found in a new message.
    browser.type_into("#signature-text", "Alice Kim\nStudent office");
    browser.click("#signature button[type=submit]");
    browser.url_after_navigation("/mail/settings?done=signature");
    browser.goto(&format!("{base}/mail/compose"));
    let body = browser.eval("return document.querySelector('#body').value");
    assert_eq!(body, "\n\n-- \nAlice Kim\nStudent office\n");

    // Auto-reply: a date the browser's date field accepts, a refusal shown
    // in the page, then saved.
    browser.goto(&format!("{base}/mail/settings"));
    browser.click("input[name=vacation_enabled]");
    browser.click("#vacation button[type=submit]");
    // The refusal comes back on the same URL: wait for its text, not a
    // URL change (reading the page at once could see the form before it).
    let source = browser.source_containing("Write the reply text before turning the auto-reply on");
    assert!(
        source.contains("Write the reply text before turning the auto-reply on"),
        "{source}"
    );
    assert_eq!(
        browser.eval("return document.querySelector('input[name=vacation_enabled]').checked"),
        true,
        "what was ticked stays ticked"
    );
    browser.type_into("#vacation-text", "Away until Monday.");
    browser.eval("document.querySelector('#vacation-end').value = '2099-12-31'; return true");
    browser.click("#vacation button[type=submit]");
    browser.url_after_navigation("/mail/settings?done=vacation");
    assert_eq!(
        browser.eval("return document.querySelector('#vacation-end').value"),
        "2099-12-31"
    );
    browser
        .screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("settings-phone.png"));
}

#[test]
fn a_student_on_a_phone_adds_a_contact_sees_it_suggested_and_groups_the_list() {
    let node = Node::with_users();
    for (id, refs, subject) in [
        ("<root@example.org>", "", "Lab meeting"),
        ("<r1@example.org>", "<root@example.org>", "Re: Lab meeting"),
        ("<other@example.org>", "", "Unrelated"),
    ] {
        let message_id = format!("Message-ID: {id}");
        let references = format!("References: {refs}");
        let headers: &[&str] = if refs.is_empty() {
            &[&message_id]
        } else {
            &[&message_id, &references]
        };
        send_with(&node, &address_of("alice"), headers, subject);
    }
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 3).then_some(()))
        .unwrap_or_else(|| panic!("mail not delivered: {}", node.log("all")));

    let browser = Browser::start(390, 844);
    let base = format!("https://127.0.0.1:{}", node.ports.https);
    browser.goto(&format!("{base}/login"));
    browser.type_into("#address", "alice@campus.test");
    browser.type_into("#password", &password_of("alice"));
    browser.click("button[type=submit]");
    browser.url_after_navigation("/mail");

    // The address book, from the top bar; a name with markup stays text.
    browser.click("a[href='/mail/contacts']");
    browser.url_after_navigation("/mail/contacts");
    browser.type_into(
        "#contact-name",
        "이민호 <img src=x onerror=window.hacked=1>",
    );
    browser.type_into("#contact-address", "minho@example.org");
    browser.click("#contact-form button[type=submit]");
    browser.url_after_navigation("/mail/contacts?done=saved");
    let fits = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(fits, true, "the address book scrolls sideways on a phone");
    assert_eq!(browser.eval("return window.hacked === undefined"), true);
    assert_eq!(
        browser.eval("return document.querySelectorAll('table.contacts img').length"),
        0
    );
    browser
        .screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("contacts-phone.png"));

    // Compose: the contact is in the recipients' list the server filled,
    // and typing asks for more (the campus directory) through the script.
    browser.goto(&format!("{base}/mail/compose"));
    let options = "return Array.from(document.querySelectorAll('#address-suggestions option')).map(o => o.value).join('|')";
    let listed = browser.eval(options);
    assert!(
        listed.as_str().unwrap_or("").contains("minho@example.org"),
        "{listed}"
    );
    browser.type_into("#to", "bo");
    wait_until(10, || {
        let v = browser.eval(options);
        v.as_str()
            .unwrap_or("")
            .contains("bob@campus.test")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the script never suggested bob: {}", browser.eval(options)));
    assert_eq!(browser.eval("return window.hacked === undefined"), true);

    // The list grouped by conversation: two rows for three messages.
    browser.goto(&format!("{base}/mail"));
    browser.click(".viewtoggle a[href='/mail?view=conversations']");
    browser.url_after_navigation("/mail?view=conversations");
    let rows =
        browser.eval("return document.querySelectorAll('table.conversations tbody tr').length");
    assert_eq!(rows, 2, "{}", browser.source());
    let fits = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(fits, true, "the grouped list scrolls sideways on a phone");
    browser
        .screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("grouped-phone.png"));
    // Ticking the conversation and pressing "flag" flags both its
    // messages, and the page comes back to the grouped view.
    browser.click("table.conversations tbody tr:has(.thread-count) td.pick input");
    browser.click(".toolbar button[value='flag']");
    browser.url_after_navigation("/mail?view=conversations&done=flag&n=2");
    // The conversation's row (the one with a size) opens it.
    browser.click("table.conversations tbody tr:has(.thread-count) td.subject a");
    let page = browser.source_containing("class=\"card conversation\"");
    assert!(page.contains("Re: Lab meeting"), "{page}");
}
