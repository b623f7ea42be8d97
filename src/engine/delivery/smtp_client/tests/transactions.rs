//! Transactions against the fake server: pipelining, per-recipient
//! results, refusals, checks before MAIL FROM, dot-stuffing, reuse.
//!
//! Reads untrusted input: no (tests only).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use super::super::{RecipientOutcome, SessionFailure, SmtpClient, TlsPolicy};
use super::{connect, rcpts, timeouts, FakeSmtp, Script, MESSAGE};

fn delivers(pipelining: bool) {
    let mut script = Script::default();
    if !pipelining {
        script.extensions = Some(vec!["8BITMIME", "SIZE 100000"]);
    }
    let server = FakeSmtp::start(script);
    let mut client = connect(&server, TlsPolicy::Opportunistic).unwrap();
    assert_eq!(client.extensions().pipelining, pipelining);
    assert!(client.extensions().enhanced_status_codes);
    assert!(!client.is_tls());
    assert_eq!(client.peer(), "localhost[127.0.0.1]");
    let outcomes = smol::block_on(client.send(
        "sender@campus.test",
        &rcpts(&["a@far.test", "b@far.test"]),
        MESSAGE,
        false,
    ))
    .unwrap();
    assert_eq!(outcomes.len(), 2);
    for outcome in &outcomes {
        let RecipientOutcome::Delivered(text) = outcome else {
            panic!("{outcomes:?}");
        };
        assert!(text.contains("250 2.0.0 queued as 42"), "{text}");
    }
    smol::block_on(client.quit());
    assert_eq!(
        server.commands(),
        [
            "EHLO out.campus.test",
            "MAIL FROM:<sender@campus.test> SIZE=22",
            "RCPT TO:<a@far.test>",
            "RCPT TO:<b@far.test>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(
        server.messages(),
        [b"Subject: hi\r\n\r\nhello\r\n.\r\n".to_vec()]
    );
}

#[test]
fn delivers_with_pipelining() {
    delivers(true);
}

#[test]
fn delivers_without_pipelining() {
    delivers(false);
}

#[test]
fn mixed_recipient_results() {
    for pipelining in [true, false] {
        let mut script = Script::default();
        if !pipelining {
            script.extensions = Some(vec![]);
        }
        let server = FakeSmtp::start(script);
        let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
        let outcomes = smol::block_on(client.send(
            "s@campus.test",
            &rcpts(&["ok@far.test", "temp@far.test", "bad@far.test"]),
            MESSAGE,
            false,
        ))
        .unwrap();
        assert!(matches!(&outcomes[0], RecipientOutcome::Delivered(_)));
        let RecipientOutcome::Temporary(temp) = &outcomes[1] else {
            panic!("{outcomes:?}");
        };
        assert!(temp.contains("450 4.2.1 mailbox busy"), "{temp}");
        let RecipientOutcome::Permanent(bad) = &outcomes[2] else {
            panic!("{outcomes:?}");
        };
        assert_eq!(
            bad,
            "host localhost[127.0.0.1] said: 550 5.1.1 no such user here (in reply to RCPT TO)"
        );
        assert!(client.is_usable());
    }
}

#[test]
fn mail_from_rejection_applies_to_everyone_and_resets() {
    for (reply, permanent) in [
        ("550 5.7.1 sender refused", true),
        ("451 4.3.0 later", false),
    ] {
        let server = FakeSmtp::start(Script {
            mail: reply,
            ..Script::default()
        });
        let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
        let result = smol::block_on(client.send(
            "s@campus.test",
            &rcpts(&["a@far.test", "b@far.test"]),
            MESSAGE,
            false,
        ));
        match result {
            Err(SessionFailure::Permanent(text)) if permanent => {
                assert!(text.contains("550 5.7.1 sender refused"), "{text}")
            }
            Err(SessionFailure::Temporary(text)) if !permanent => {
                assert!(text.contains("451 4.3.0"), "{text}")
            }
            other => panic!("{reply}: {other:?}"),
        }
        assert!(client.is_usable());
        assert_eq!(server.commands().last().map(String::as_str), Some("RSET"));
        // The fake answers the pipelined DATA with 354 regardless; the
        // client then ends it with a lone dot (RFC 2920 §3.1), no content.
        assert!(server.messages().iter().all(|m| m == b".\r\n"));
    }
}

#[test]
fn final_4xx_defers_the_accepted_recipients_only() {
    let server = FakeSmtp::start(Script {
        end_of_data: "451 4.3.0 disk trouble",
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let outcomes = smol::block_on(client.send(
        "s@campus.test",
        &rcpts(&["a@far.test", "bad@far.test"]),
        MESSAGE,
        false,
    ))
    .unwrap();
    let RecipientOutcome::Temporary(text) = &outcomes[0] else {
        panic!("{outcomes:?}");
    };
    assert!(
        text.contains("451 4.3.0 disk trouble (in reply to end of DATA)"),
        "{text}"
    );
    assert!(matches!(&outcomes[1], RecipientOutcome::Permanent(_)));
}

#[test]
fn data_refused_after_pipelined_recipients() {
    let server = FakeSmtp::start(Script {
        data: "554 5.5.1 no valid recipients",
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let outcomes =
        smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), MESSAGE, false))
            .unwrap();
    assert!(matches!(&outcomes[0], RecipientOutcome::Permanent(t) if t.contains("554 5.5.1")));
    assert_eq!(server.commands().last().map(String::as_str), Some("RSET"));
}

#[test]
fn no_recipient_accepted_means_no_data() {
    let server = FakeSmtp::start(Script {
        extensions: Some(vec![]),
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let outcomes = smol::block_on(client.send(
        "s@campus.test",
        &rcpts(&["bad@far.test", "temp@far.test"]),
        MESSAGE,
        false,
    ))
    .unwrap();
    assert!(matches!(&outcomes[0], RecipientOutcome::Permanent(_)));
    assert!(matches!(&outcomes[1], RecipientOutcome::Temporary(_)));
    assert!(!server.commands().contains(&"DATA".to_string()));
    assert_eq!(server.commands().last().map(String::as_str), Some("RSET"));
}

#[test]
fn smtputf8_needed_but_not_offered_fails_before_mail_from() {
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    for (from, to, flag) in [
        ("s@campus.test", "a@far.test", true),
        ("s@campus.test", "철수@far.test", false),
    ] {
        let result = smol::block_on(client.send(from, &rcpts(&[to]), MESSAGE, flag));
        let Err(SessionFailure::Permanent(text)) = result else {
            panic!("{result:?}");
        };
        assert!(text.starts_with("5.6.7"), "{text}");
    }
    assert!(client.is_usable());
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
}

#[test]
fn too_big_for_the_server_fails_before_mail_from() {
    let server = FakeSmtp::start(Script {
        extensions: Some(vec!["SIZE 10"]),
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let result =
        smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), MESSAGE, false));
    let Err(SessionFailure::Permanent(text)) = result else {
        panic!("{result:?}");
    };
    assert!(text.starts_with("5.3.4"), "{text}");
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
}

#[test]
fn eight_bit_body_needs_8bitmime() {
    let body = "Subject: 안녕\r\n\r\n안녕하세요\r\n".as_bytes();
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), body, false)).unwrap();
    assert!(server
        .commands()
        .iter()
        .any(|c| c.ends_with("BODY=8BITMIME")));

    let server = FakeSmtp::start(Script {
        extensions: Some(vec!["PIPELINING"]),
        ..Script::default()
    });
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let result = smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), body, false));
    assert!(matches!(result, Err(SessionFailure::Permanent(t)) if t.starts_with("5.6.3")));
}

#[test]
fn dot_stuffing_and_final_crlf_on_the_wire() {
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let message = b"Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nlast line";
    smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), message, false)).unwrap();
    assert_eq!(
        server.messages(),
        [b"Subject: dots\r\n\r\n..leading\r\n...two\r\n..\r\nlast line\r\n.\r\n".to_vec()]
    );
}

#[test]
fn two_transactions_on_one_connection() {
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    for to in ["a@far.test", "b@far.test"] {
        let outcomes =
            smol::block_on(client.send("s@campus.test", &rcpts(&[to]), MESSAGE, false)).unwrap();
        assert!(matches!(&outcomes[0], RecipientOutcome::Delivered(_)));
    }
    smol::block_on(client.quit());
    assert_eq!(server.messages().len(), 2);
    let mails = server
        .commands()
        .iter()
        .filter(|c| c.starts_with("MAIL"))
        .count();
    assert_eq!(mails, 2);
}

#[test]
fn addresses_with_line_breaks_never_reach_the_wire() {
    let server = FakeSmtp::start(Script::default());
    let mut client = connect(&server, TlsPolicy::Disabled).unwrap();
    let outcomes = smol::block_on(client.send(
        "s@campus.test",
        &rcpts(&["a@far.test\r\nRCPT TO:<evil@far.test>", "b@far.test"]),
        MESSAGE,
        false,
    ))
    .unwrap();
    assert!(matches!(&outcomes[0], RecipientOutcome::Permanent(_)));
    assert!(matches!(&outcomes[1], RecipientOutcome::Delivered(_)));
    assert!(!server.commands().iter().any(|c| c.contains("evil")));
}

#[test]
fn a_broken_session_refuses_further_transactions() {
    // Greets and answers EHLO, then closes before MAIL's reply.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut conn = BufReader::new(tcp);
        conn.get_mut().write_all(b"220 fake.test\r\n").unwrap();
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        conn.get_mut().write_all(b"250 fake.test\r\n").unwrap();
        line.clear();
        let _ = conn.read_line(&mut line);
    });
    let mut client = smol::block_on(SmtpClient::connect(
        addr,
        "localhost",
        "out.campus.test",
        TlsPolicy::Opportunistic,
        timeouts(),
    ))
    .unwrap();
    let first =
        smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), MESSAGE, false));
    assert!(
        matches!(first, Err(SessionFailure::Temporary(_))),
        "{first:?}"
    );
    assert!(!client.is_usable());
    let second =
        smol::block_on(client.send("s@campus.test", &rcpts(&["a@far.test"]), MESSAGE, false));
    assert!(matches!(second, Err(SessionFailure::Temporary(_))));
    smol::block_on(client.quit());
}
