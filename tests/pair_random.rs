//! A randomised run against two real nodes (two processes on loopback,
//! each with its own data folder and ports): many operations on both sides
//! while the links between them are cut and healed at random, then the
//! end state is checked against a model the test kept (issue #8).
//!
//! Every link between the nodes (both replication connections and both
//! engines' shadow links) goes through a TCP proxy the test cuts and heals
//! (`common::proxy`). Each step is one of: a delivery over SMTP of a
//! uniquely-subjected message to a random user on a random node; mark
//! read/unread, flag/unflag, move (user folders, INBOX, Junk), delete to
//! Trash or delete for good, through a random node's webmail, on a message
//! that node lists; a conflict (one message changed through both nodes,
//! moves most often); a user folder renamed; a cut (a full partition or
//! one link only) or a heal; a node stopped dead (SIGKILL) for a few steps,
//! the other taking its steps meanwhile; a short pause.
//!
//! The model knows which deliveries got a 250 and which messages were
//! deleted for good. At the end, healed, both nodes must be identical
//! (`pair verify`), every accepted message not deleted for good must be
//! listed exactly once on both nodes in its user's folders, nothing deleted
//! for good anywhere, and both webmails must list the same folder and flags
//! for each message. Which side wins a conflict (move vs move, flag vs
//! flag) is the merge rules' business; the model asks only that both agree.
//!
//! Deterministic from a seed the test prints; `PAIR_RANDOM_SEED=<n>`
//! replays a run, `PAIR_RANDOM_STEPS=<n>` changes its length (default 120).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::mail_lists::{Row, Webmails};
use common::pair::{init, join, named};
use common::proxy::Proxy;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: [&str; 2] = ["alice", "bob"];
const USER_FOLDERS: [&str; 2] = ["Projects", "Receipts"];
const DEFAULT_STEPS: usize = 120;

/// The value of `key` (a quoted string) in a node's appliance.toml.
fn config_value(node: &Node, key: &str) -> String {
    let text = std::fs::read_to_string(&node.config).expect("appliance.toml");
    let prefix = format!("{key} = \"");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no {key} in appliance.toml"))
        .to_string()
}

/// What the model expects of one accepted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Kept,
    DeletedForGood,
}

struct Model {
    /// Subject -> (user, fate), for every delivery that got a 250.
    accepted: BTreeMap<String, (&'static str, Fate)>,
    /// Deliveries that got no 250: each may exist at most once.
    unsure: Vec<String>,
}

impl Model {
    /// Why the rows one node lists for `user` break the model, if they do.
    fn check(&self, node: &str, user: &str, rows: &[Row]) -> Result<(), String> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for row in rows {
            *seen.entry(row.subject.as_str()).or_default() += 1;
        }
        for (subject, count) in &seen {
            match self.accepted.get(*subject) {
                Some((owner, _)) if *owner != user => {
                    return Err(format!(
                        "{node}: {subject:?} of {owner} is in {user}'s mail"
                    ))
                }
                Some((_, Fate::DeletedForGood)) => {
                    return Err(format!(
                        "{node}: {subject:?} was deleted for good but is back"
                    ))
                }
                Some(_) | None if *count > 1 => {
                    return Err(format!("{node}: {subject:?} is listed {count} times"))
                }
                None if !self.unsure.iter().any(|s| s == subject) => {
                    return Err(format!("{node}: {subject:?} was never sent"))
                }
                _ => {}
            }
        }
        for (subject, (owner, fate)) in &self.accepted {
            if *owner == user && *fate == Fate::Kept && !seen.contains_key(subject.as_str()) {
                return Err(format!("{node}: {user} lost {subject:?}"));
            }
        }
        Ok(())
    }
}

/// The four proxies: replication to A and to B, engine link to A and to B.
struct Links {
    proxies: [Proxy; 4],
    cut: [bool; 4],
    cuts: usize,
}

impl Links {
    fn set(&mut self, which: [bool; 4]) {
        for (i, down) in which.into_iter().enumerate() {
            if down && !self.cut[i] {
                self.proxies[i].cut();
            } else if !down && self.cut[i] {
                self.proxies[i].heal();
            }
        }
        if which.iter().any(|&d| d) && which != self.cut {
            self.cuts += 1;
        }
        self.cut = which;
    }
}

/// What a run did, for the summary line.
#[derive(Default)]
struct Stats {
    actions: usize,
    skipped: usize,
    conflicts: usize,
    renames: usize,
    deleted: usize,
    steps_apart: usize,
    kills: usize,
    steps_down: usize,
}

/// Delivers a message with `subject` to `user` at `node` over SMTP and
/// records in the model whether it got a 250.
fn deliver(node: &Node, user: &'static str, subject: &str, model: &mut Model) {
    let (ok, transcript) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "registrar@example.org",
        "--to",
        &address_of(user),
        "--header",
        &format!("Subject: {subject}"),
    ]);
    if ok && transcript.contains("250 2.0.0") {
        println!("  {subject} to {user} at {}: 250", node.smtp_addr());
        model
            .accepted
            .insert(subject.to_string(), (user, Fate::Kept));
    } else {
        println!("no 250 for {subject}:\n{transcript}");
        model.unsure.push(subject.to_string());
    }
}

/// The webmail sessions, the users' folders and the model, as the run's
/// steps use them.
struct Driver {
    web: Webmails,
    /// Per user: (folder id, name) of every folder a test message can be in.
    folders: HashMap<&'static str, Vec<(String, String)>>,
    model: Model,
    stats: Stats,
}

impl Driver {
    /// Every message `user` has on node `n`.
    fn view(&mut self, n: usize, user: &'static str) -> Vec<Row> {
        let folders = &self.folders[user];
        self.web.view(n, user, folders)
    }

    /// Does action `kind` on `row` through node `n`'s webmail: 0 mark it
    /// read or unread, 1 flag or unflag it (whichever changes it, as this
    /// node lists it); 2 move (to the folder `target` picks); 3 delete (to
    /// Trash; from Trash for good); 4 delete for good (to Trash first when
    /// it is elsewhere).
    fn act_on(&mut self, n: usize, user: &'static str, row: &Row, kind: usize, target: usize) {
        self.stats.actions += 1;
        let folders = &self.folders[user];
        let shown = folders
            .iter()
            .find(|(_, name)| *name == row.folder)
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let here = [("m", row.id.as_str()), ("folder", shown.as_str())];
        // The run's trace (shown when the test fails, or with --nocapture).
        let trace = |what: &str, location: &str| {
            let node = ["A", "B"][n];
            println!(
                "  on {node} as {user}: {what} {} in {} -> {location}",
                row.subject, row.folder
            );
        };
        if kind < 2 {
            let action = match (kind, row.seen, row.flagged) {
                (0, true, _) => "unread",
                (0, false, _) => "read",
                (_, _, true) => "unflag",
                (_, _, false) => "flag",
            };
            trace(
                action,
                &self
                    .web
                    .act(n, user, &[here[0], here[1], ("action", action)]),
            );
            return;
        }
        if kind == 2 {
            let targets: Vec<&String> = folders
                .iter()
                .filter(|(_, name)| name != "Trash")
                .map(|(id, _)| id)
                .collect();
            let target = targets[target % targets.len()].clone();
            let fields = [here[0], here[1], ("action", "move"), ("target", &target)];
            trace(
                &format!("move to {target}"),
                &self.web.act(n, user, &fields),
            );
            return;
        }
        let mut location = self
            .web
            .act(n, user, &[here[0], here[1], ("action", "delete")]);
        trace("delete", &location);
        if kind == 4 && location.contains("done=trash") {
            let fields = [here[0], ("folder", "Trash"), ("action", "delete")];
            location = self.web.act(n, user, &fields);
            trace("then from Trash", &location);
        }
        // Only the reply says whether it went for good: a move replicated
        // in between may have taken it out of Trash.
        if !location.contains("done=delete") {
            return;
        }
        self.stats.deleted += 1;
        if let Some(entry) = self.model.accepted.get_mut(&row.subject) {
            entry.1 = Fate::DeletedForGood;
        } else {
            assert!(
                self.model.unsure.contains(&row.subject),
                "node {n} listed {:?}, never sent",
                row.subject
            );
            self.model.unsure.retain(|s| *s != row.subject);
        }
    }
}

#[test]
fn random_operations_on_both_nodes_under_random_partitions_match_the_model() {
    let seed: u64 = match std::env::var("PAIR_RANDOM_SEED") {
        Ok(s) => s.trim().parse().expect("PAIR_RANDOM_SEED is a number"),
        Err(_) => rand::random(),
    };
    let steps: usize = std::env::var("PAIR_RANDOM_STEPS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_STEPS);
    // Printed first, so a failure can be replayed from the log.
    println!("pair_random: seed {seed} (replay with PAIR_RANDOM_SEED={seed}), {steps} steps");
    let mut rng = StdRng::seed_from_u64(seed);

    let (mut a, mut b) = (named("node-a"), named("node-b"));
    for node in [&a, &b] {
        // Every test message fits one list page.
        node.set_key("page_size", "500");
        // A 250 during a partition waits this long for the peer's copy.
        node.set_key("shadow_wait", "\"300ms\"");
    }
    let (token, ports) = init(&a, &b);
    a.start("all");
    let joined = join(&b, &token, &ports);
    assert!(joined.contains("joined node-a"), "{joined}");
    let links = [
        format!("127.0.0.1:{}", ports.link_a),
        format!("127.0.0.1:{}", ports.link_b),
        config_value(&a, "engine_listen"),
        config_value(&b, "engine_listen"),
    ];
    let mut links = Links {
        proxies: links.map(|target| Proxy::start(&target)),
        cut: [false; 4],
        cuts: 0,
    };
    a.kill("all");
    a.set_key("peer", &format!("\"{}\"", links.proxies[1].addr()));
    a.set_key("engine_peer", &format!("\"{}\"", links.proxies[3].addr()));
    b.set_key("peer", &format!("\"{}\"", links.proxies[0].addr()));
    b.set_key("engine_peer", &format!("\"{}\"", links.proxies[2].addr()));
    a.start("all");
    b.start("all");
    let mut web = Webmails::new([&a, &b]);

    // The user folders, made on A and replicated before the run starts.
    let mut folders: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for user in USERS {
        for name in USER_FOLDERS {
            let fields = [("action", "create"), ("name", name)];
            let done = web.post(0, user, "/mail/folders", &fields);
            assert!(
                done.contains("done=created"),
                "create {name} for {user}: {done}"
            );
        }
        let page = web.get(0, user, "/mail");
        let mut list: Vec<(String, String)> = ["INBOX", "Junk", "Trash"]
            .iter()
            .map(|f| (f.to_string(), f.to_string()))
            .collect();
        for name in USER_FOLDERS {
            let id = folder_id(&page, name).unwrap_or_else(|| panic!("{name} made"));
            list.push((id, name.to_string()));
        }
        folders.insert(user, list);
    }
    common::pair::wait_identical(&a, &b);

    let mut run = Driver {
        web,
        folders,
        model: Model {
            accepted: BTreeMap::new(),
            unsure: Vec::new(),
        },
        stats: Stats::default(),
    };
    // The node stopped dead, and the step it starts again at.
    let mut down: Option<(usize, usize)> = None;
    for step in 0..steps {
        // The same draws every step, whatever the nodes list, so a seed
        // always makes the same sequence of choices.
        let drawn = rng.gen_range(0..2);
        let user = USERS[rng.gen_range(0..USERS.len())];
        let roll = rng.gen_range(0..100);
        let (pick, kind, other): (usize, usize, usize) = (rng.gen(), rng.gen(), rng.gen());
        let (pause, heal) = (rng.gen_range(100..1200), rng.gen_bool(0.6));
        if let Some((d, _)) = down.filter(|&(_, until)| step >= until) {
            println!("  start {} again", ["A", "B"][d]);
            if d == 0 { &mut a } else { &mut b }.start("all");
            down = None;
        }
        // While a node is down, the other takes its steps.
        let n = match down {
            Some((d, _)) if d == drawn => 1 - drawn,
            _ => drawn,
        };
        if links.cut.iter().any(|&d| d) {
            run.stats.steps_apart += 1;
        }
        if down.is_some() {
            run.stats.steps_down += 1;
        }
        println!("step {step:03} (links cut: {:?}):", links.cut);
        if roll < 28 {
            let subject = format!("random-{seed:x}-{step:03}");
            deliver([&a, &b][n], user, &subject, &mut run.model);
        } else if roll < 70 {
            // One action on a message this node lists for this user.
            let rows = run.view(n, user);
            if rows.is_empty() {
                run.stats.skipped += 1;
                continue;
            }
            let row = &rows[pick % rows.len()];
            let kind = match roll {
                28..=44 => kind % 2,
                45..=55 => 2,
                56..=62 => 3,
                _ => 4,
            };
            run.act_on(n, user, row, kind, other);
        } else if roll < 83 {
            // A conflict: the same message changed through both nodes,
            // in a random order.
            if down.is_some() {
                run.stats.skipped += 1;
                continue;
            }
            let on_a = run.view(0, user);
            let on_b = run.view(1, user);
            let both: Vec<&Row> = on_a
                .iter()
                .filter(|r| on_b.iter().any(|o| o.id == r.id))
                .collect();
            if both.is_empty() {
                run.stats.skipped += 1;
                continue;
            }
            let id = both[pick % both.len()].id.clone();
            run.stats.conflicts += 1;
            println!("  a conflict on {id}:");
            for (i, (node, draw)) in [(n, kind), (1 - n, other)].into_iter().enumerate() {
                let listed = if node == 0 { &on_a } else { &on_b };
                let Some(row) = listed.iter().find(|r| r.id == id) else {
                    continue;
                };
                // Moves most often: the conflicts the merge rules decide.
                let kind = [0, 1, 2, 2, 2, 3, 4][draw % 7];
                run.act_on(node, user, row, kind, draw / 7 + i);
            }
        } else if roll < 86 {
            // A user folder renamed (its id stays; moves into it and mail
            // in it must follow it, whatever the other side does).
            let (id, label) = run.folders[user][3 + pick % USER_FOLDERS.len()].clone();
            let name = format!("{label}-{step:03}");
            let location = run.web.post(
                n,
                user,
                "/mail/folders",
                &[
                    ("action", "rename"),
                    ("folder", &id),
                    ("name", &name),
                    ("parent", ""),
                ],
            );
            println!(
                "  on {} as {user}: rename {label} ({id}) to {name} -> {location}",
                ["A", "B"][n]
            );
            run.stats.renames += 1;
        } else if roll < 94 {
            // A change of partition: heal everything, or cut a set of
            // links (a full partition, the replication only, or one
            // replication direction only).
            let next = if links.cut.iter().any(|&d| d) && heal {
                [false; 4]
            } else {
                match kind % 4 {
                    0 => [true; 4],
                    1 => [true, true, false, false],
                    2 => [true, false, false, false],
                    _ => [false, true, false, false],
                }
            };
            println!("  links cut now: {next:?}");
            links.set(next);
        } else if roll < 97 {
            // A node stopped dead (SIGKILL) for a few steps: what it
            // accepted must survive, what it missed must catch up.
            if down.is_none() {
                println!("  SIGKILL {}", ["A", "B"][drawn]);
                if drawn == 0 { &mut a } else { &mut b }.kill("all");
                down = Some((drawn, step + 2 + kind % 8));
                run.stats.kills += 1;
            }
        } else {
            println!("  pause {pause} ms");
            std::thread::sleep(Duration::from_millis(pause));
        }
    }
    // Healed, both must end identical and as the model says.
    links.set([false; 4]);
    if let Some((d, _)) = down {
        if d == 0 { &mut a } else { &mut b }.start("all");
    }
    let mut last = Vec::new();
    let verified = wait_until(120, || {
        // Every way the state is off, so a failure shows them all.
        let mut problems = Vec::new();
        let out = a.cli(&["pair", "verify"], None);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            problems.push(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let mut both = Vec::new();
        for (n, name) in [(0, "node-a"), (1, "node-b")] {
            let mut all = Vec::new();
            for user in USERS {
                let mut rows = run.view(n, user);
                if let Err(e) = run.model.check(name, user, &rows) {
                    problems.push(e);
                }
                rows.sort();
                all.push(rows);
            }
            both.push(all);
        }
        if both[0] != both[1] {
            let differ: Vec<String> = both[0]
                .iter()
                .flatten()
                .filter(|r| !both[1].iter().flatten().any(|o| o == *r))
                .chain(
                    both[1]
                        .iter()
                        .flatten()
                        .filter(|r| !both[0].iter().flatten().any(|o| o == *r)),
                )
                .map(|r| format!("{r:?}"))
                .collect();
            problems.push(format!("the webmails differ in: {}", differ.join(", ")));
        }
        let total: usize = both[0].iter().map(Vec::len).sum();
        if out.status.success() && !said.contains(&format!("the same {total} message(s)")) {
            problems.push(format!(
                "verify counts other than the {total} listed: {said}"
            ));
        }
        last = problems;
        last.is_empty().then_some(said)
    })
    .unwrap_or_else(|| {
        panic!(
            "seed {seed}: not as the model says after the heal:\n{}\nA:\n{}\nB:\n{}",
            last.join("\n"),
            a.log("all"),
            b.log("all")
        )
    });
    let kept = run
        .model
        .accepted
        .values()
        .filter(|(_, fate)| *fate == Fate::Kept)
        .count();
    let s = &run.stats;
    println!(
        "pair_random: seed {seed}, {steps} steps: {} accepted ({} without a 250), \
         {} webmail actions ({} of them in {} conflicts, {} steps skipped with nothing \
         to act on), {} deleted for good, {kept} kept, {} folder renames, {} cuts ({} steps \
         with a link cut), {} SIGKILLs ({} steps with a node down), {} logins; {}",
        run.model.accepted.len(),
        run.model.unsure.len(),
        s.actions,
        s.conflicts * 2,
        s.conflicts,
        s.skipped,
        s.deleted,
        s.renames,
        links.cuts,
        s.steps_apart,
        s.kills,
        s.steps_down,
        run.web.logins,
        verified.trim()
    );
}
