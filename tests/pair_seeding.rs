//! Replacing a failed node: node A has history (deliveries on both
//! nodes, a flag, a read message, a folder with mail moved into it, a
//! message deleted for good, users made on A, one while B was down); B's
//! store is wiped and B restarted while mail keeps arriving at A. B is seeded from A's
//! snapshot (its log and `pair status` say so), the mail that arrived
//! meanwhile follows as the log tail, both nodes end identical (`pair
//! verify`), the mail reads on B, and B's next delivery gets a message id
//! its earlier life never used (A takes it).

mod common;

use common::pair::{deliver, id_of, pair_up, wait_identical};
use common::*;

fn act(web: &Web, page: &str, fields: &[(&str, &str)]) {
    let token = Web::csrf_of(page);
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    let r = web.post("/mail/actions", &all);
    assert_eq!(r.status, 303, "{fields:?}: {}", r.body);
}

/// Every message id bob can see on `node` (inbox and `folders`).
fn ids_of_bob(node: &Node, folders: &[&str]) -> Vec<String> {
    let web = node.web_login("bob");
    let mut ids = ids_on(&web.inbox());
    for folder in folders {
        ids.extend(ids_on(&web.get(&format!("/mail?folder={folder}")).body));
    }
    ids
}

#[test]
fn a_wiped_node_is_seeded_from_a_snapshot_and_the_tail_made_meanwhile() {
    let (a, mut b) = pair_up();
    for subject in ["H1", "H2", "H3", "H4"] {
        deliver(&a, subject);
    }
    deliver(&b, "B1 before the wipe");
    deliver(&b, "B2 before the wipe");
    a.add_user("carol");

    // Bob files, flags, reads and deletes on A.
    let web = a.web_login("bob");
    let inbox = wait_until(30, || {
        let page = web.inbox();
        id_of(&page, "B2 before the wipe").is_some().then_some(page)
    })
    .expect("B's mail on A");
    let [h1, h2, h3, h4] = ["H1", "H2", "H3", "H4"].map(|s| id_of(&inbox, s).expect(s));
    let r = web.post(
        "/mail/folders",
        &[
            ("csrf_token", &Web::csrf_of(&inbox)),
            ("action", "create"),
            ("name", "Projects"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let projects = folder_id(&web.inbox(), "Projects").expect("folder made");
    act(
        &web,
        &web.inbox(),
        &[("action", "move"), ("m", &h1), ("target", &projects)],
    );
    act(&web, &web.inbox(), &[("action", "flag"), ("m", &h2)]);
    assert_eq!(web.get(&format!("/mail/message/{h4}")).status, 200);
    act(&web, &web.inbox(), &[("action", "delete"), ("m", &h3)]);
    let trash = web.get("/mail?folder=Trash").body;
    act(
        &web,
        &trash,
        &[("action", "delete"), ("m", &h3), ("folder", "Trash")],
    );
    let before = wait_identical(&a, &b);
    assert!(before.contains("the same 5 message(s)"), "{before}");
    let old_ids = ids_of_bob(&b, &[&projects, "Trash"]);
    assert_eq!(old_ids.len(), 5, "{old_ids:?}");

    // B goes down; meanwhile dave is made on A (B's directory, which is
    // kept, never hears of him). B's disk is replaced; while B starts,
    // mail keeps arriving at A.
    b.kill("all");
    a.add_user("dave");
    std::fs::remove_dir_all(b.data().join("store")).expect("wipe B's store");
    let smtp_a = a.smtp_addr();
    let meanwhile = std::thread::spawn(move || {
        for i in 0..4 {
            let (ok, t) = swaks(&[
                "--server",
                &smtp_a,
                "--from",
                "registrar@example.org",
                "--to",
                &address_of("bob"),
                "--header",
                &format!("Subject: During seeding {i}"),
            ]);
            assert!(ok && t.contains("250 2.0.0"), "{t}");
        }
    });
    b.start("all");
    meanwhile.join().expect("deliveries to A");

    // Seeded from the snapshot, not by replaying A's whole log.
    let log = b.log("all");
    assert!(log.contains("seeded from node-a's snapshot: "), "{log}");
    let status = b.cli_ok(&["pair", "status"], None);
    let seeded = status
        .lines()
        .find(|l| l.starts_with("seeded from node-a's snapshot: "))
        .unwrap_or_else(|| panic!("{status}"));
    let messages: u64 = seeded
        .trim_start_matches("seeded from node-a's snapshot: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{seeded}"));
    assert!(messages >= 5, "{seeded}");
    assert!(a.log("all").contains("sent a snapshot of this store"));

    // The tail: everything delivered to A meanwhile is on B too.
    let web_b = b.web_login("bob");
    let page = wait_until(30, || {
        let page = web_b.inbox();
        (0..4)
            .all(|i| id_of(&page, &format!("During seeding {i}")).is_some())
            .then_some(page)
    })
    .unwrap_or_else(|| panic!("the tail never arrived:\n{}", b.log("all")));
    let verified = wait_identical(&a, &b);
    assert!(verified.contains("the same 9 message(s)"), "{verified}");

    // The history reads on B: bytes, folder, flag, deletion, the user.
    let h2_page = web_b.get(&format!("/mail/message/{h2}"));
    assert_eq!(h2_page.status, 200);
    assert!(h2_page.body.contains("H2"), "{}", h2_page.body);
    assert!(id_of(&page, "H3").is_none() && id_of(&page, "H1").is_none());
    let filed = web_b.get(&format!("/mail?folder={projects}")).body;
    assert!(id_of(&filed, "H1").is_some(), "{filed}");
    assert!(!web_b.get("/mail?folder=Trash").body.contains(&h3));
    assert_eq!(b.web_login("carol").get("/mail").status, 200);
    assert_eq!(b.web_login("dave").get("/mail").status, 200);

    // B's next delivery gets an id its earlier life never used, and A
    // takes it (a reused sequence number would be ignored there).
    deliver(&b, "After the seeding");
    let fresh =
        wait_until(30, || id_of(&web_b.inbox(), "After the seeding")).expect("delivered on B");
    assert!(!old_ids.contains(&fresh), "{fresh} reused");
    let web_a = a.web_login("bob");
    wait_until(30, || id_of(&web_a.inbox(), "After the seeding"))
        .unwrap_or_else(|| panic!("B's new mail never reached A:\n{}", a.log("all")));
    let verified = wait_identical(&a, &b);
    assert!(verified.contains("the same 10 message(s)"), "{verified}");
}
