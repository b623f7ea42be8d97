//! The management commands work the same whether the appliance is stopped
//! (they open the directory themselves) or running (they go through the
//! control socket), and their errors say what to do.

mod common;

use common::*;

#[test]
fn directory_commands_while_stopped_and_while_running() {
    let mut node = Node::new();
    // Stopped: the command opens the database itself.
    let out = node.cli(
        &["user", "add", "alice@campus.test", "--password-stdin"],
        Some("alice-secret-pw"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("domain add campus.test"), "{err}");

    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    assert!(node
        .cli_ok(&["user", "list"], None)
        .contains("alice@campus.test\tenabled"));

    // Running: the same commands go through the control socket.
    node.start("all");
    assert!(
        node.admin_password.is_some(),
        "the admin password is printed on first start"
    );
    node.add_user("bob");
    let list = node.cli_ok(&["user", "list"], None);
    assert!(list.contains("bob@campus.test"), "{list}");
    node.cli_ok(
        &[
            "alias",
            "add",
            "office@campus.test",
            "alice@campus.test",
            "bob@campus.test",
        ],
        None,
    );
    assert!(node
        .cli_ok(&["alias", "list"], None)
        .contains("office@campus.test"));

    // The running engine sees the new user at once (the snapshot is republished).
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--to",
        "office@campus.test",
        "--from",
        "x@example.org",
        "--header",
        "Subject: To the office",
    ]);
    assert!(ok, "{t}");
    let bob = node.web_login("bob");
    wait_until(30, || bob.inbox().contains("To the office").then_some(()))
        .expect("alias delivered to bob");
    let alice = node.web_login("alice");
    wait_until(30, || alice.inbox().contains("To the office").then_some(()))
        .expect("alias delivered to alice");

    // passwd: the old password stops working, the new one works.
    node.cli_ok(
        &["user", "passwd", "bob@campus.test", "--password-stdin"],
        Some("bob-new-password"),
    );
    let web = Web::new(&node);
    assert_ne!(web.login("bob@campus.test", &password_of("bob")).0, 303);
    assert_eq!(web.login("bob@campus.test", "bob-new-password").0, 303);

    // disable: logins and new mail are refused.
    node.cli_ok(&["user", "disable", "bob@campus.test"], None);
    assert!(node
        .cli_ok(&["user", "list"], None)
        .contains("bob@campus.test\tdisabled"));
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--to",
        "bob@campus.test",
        "--from",
        "x@example.org",
    ]);
    assert!(!ok);
    assert!(t.contains("550 5.2.1"), "{t}");
    assert_ne!(
        Web::new(&node)
            .login("bob@campus.test", "bob-new-password")
            .0,
        303
    );

    // Errors are specific.
    let out = node.cli(
        &["user", "add", "not-an-address", "--password-stdin"],
        Some("whatever-pw"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid mail address"));
    let out = node.cli(&["user", "add", "carol@campus.test"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));

    // A second appliance on the same data folder is refused.
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&node.config)
        .args(["run"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn configuration_errors_name_the_key() {
    let node = Node::new();
    let text = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(&node.config, format!("{text}\n[extra]\nfoo = 1\n")).unwrap();
    let out = node.cli(&["run"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("extra"), "{err}");

    std::fs::write(
        &node.config,
        text.replace("max_line_bytes = 4096", "max_line_bytes = 10"),
    )
    .unwrap();
    let out = node.cli(&["run"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("engine.max_line_bytes"), "{err}");
}

#[test]
fn config_is_found_through_the_environment_variable() {
    let node = Node::new();
    let out = std::process::Command::new(BIN)
        .env("CAMPUSMAIL_CONFIG", &node.config)
        .args(["domain", "add", "campus.test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(node
        .cli_ok(&["domain", "list"], None)
        .contains("campus.test"));
}

#[test]
fn user_import_from_a_file_while_stopped_and_from_stdin_while_running() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);

    // A file with a problem is refused whole, with the line and what to do.
    let bad = node.data().join("bad.csv");
    std::fs::write(
        &bad,
        "address,class\nfrank@campus.test,student\nfrank@elsewhere.test,student\n",
    )
    .unwrap();
    let out = node.cli(&["user", "import", bad.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        err.contains("line 3: the domain elsewhere.test is not served here"),
        "{err}"
    );
    assert!(!node
        .cli_ok(&["user", "list"], None)
        .contains("frank@campus.test"));

    // Stopped: a spreadsheet export (BOM, CRLF), with and without passwords.
    let mut csv = format!(
        "\u{feff}address,class,password\r\ncarol@campus.test,staff,{}\r\ndave@campus.test,student,\r\n",
        password_of("carol")
    );
    for i in 0..1000 {
        csv.push_str(&format!("s{i:04}@campus.test,student,\r\n"));
    }
    let file = node.data().join("students.csv");
    std::fs::write(&file, csv).unwrap();
    let out = node.cli_ok(&["user", "import", file.to_str().unwrap()], None);
    assert!(
        out.contains("imported 1002 users: 1 with a password, 1001 without"),
        "{out}"
    );

    // Running: the same command through the control socket, from stdin.
    node.start("all");
    let stdin_csv = format!(
        "address,password\nerin@campus.test,{}\ndave@campus.test,\n",
        password_of("erin")
    );
    let out = node.cli(&["user", "import", "-"], Some(&stdin_csv));
    assert!(!out.status.success(), "dave exists already");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("line 3: the user dave@campus.test already exists"));
    let out = node.cli_ok(
        &["user", "import", "--skip-existing", "-"],
        Some(&stdin_csv),
    );
    assert!(out.contains("imported 1 user"), "{out}");
    assert!(out.contains("skipped 1 row"), "{out}");

    let list = node.cli_ok(&["user", "list"], None);
    assert!(
        list.contains("dave@campus.test\tenabled\tstudent\tno password"),
        "{list}"
    );
    assert!(
        list.contains("s0999@campus.test\tenabled\tstudent"),
        "{list}"
    );
    assert!(
        list.contains("carol@campus.test\tenabled\tstaff\n"),
        "{list}"
    );

    // Imported passwords log in; an account without one never does, and
    // the refusal is the ordinary login failure, not an error page.
    node.web_login("carol");
    node.web_login("erin");
    let web = Web::new(&node);
    for attempt in ["", "!no-password-set", "dave-secret-pw"] {
        let (status, body) = web.login("dave@campus.test", attempt);
        assert_ne!(status, 303, "{attempt:?} logged in");
        assert!(status < 500, "{status}: {body}");
    }

    // The running engine knows the imported users at once: mail for them is taken.
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--to",
        "s0500@campus.test",
        "--from",
        "registrar@example.org",
    ]);
    assert!(ok, "{t}");

    // After `user passwd` the imported account can log in.
    node.cli_ok(
        &["user", "passwd", "dave@campus.test", "--password-stdin"],
        Some(&password_of("dave")),
    );
    node.web_login("dave");
}
