//! Shared harness for the end-to-end tests: starts the real `campusmail`
//! binary on free loopback ports with its own data folder, and talks to it
//! with real clients (swaks for SMTP, curl for HTTP, raw sockets where a
//! client would refuse to send the malformed bytes a test needs).
//!
//! Nothing here asserts timings: `wait_until` only bounds how long a test
//! waits for something that must eventually happen.
#![allow(dead_code)]

pub mod browser;
pub mod mail_lists;
pub mod pair;
pub mod peers;
pub mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_campusmail");
pub const DOMAIN: &str = "campus.test";

/// Ports of one appliance node; picked free on 127.0.0.1.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub lmtp: u16,
    pub https: u16,
    pub http: u16,
}

/// Ports handed out by this test binary so far. Tests run in parallel
/// threads and a port is free again once its probe socket closes, so
/// without this two nodes (or a node and its pair link) could be given the
/// same port.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// Test ports come from below Linux's ephemeral range (32768-60999):
/// a port handed out here is bound by a node only some seconds later, and
/// meanwhile any outgoing connection on the machine (a client, a peer
/// link) could be given an ephemeral port as its own end. Five digits
/// starting with 1, so no test port begins with a default port that
/// `Node::new` replaces in appliance.toml (2525, 2587, 2465, 2424, 8443,
/// 8080) and is rewritten twice.
const TEST_PORTS: std::ops::Range<u16> = 10_000..20_000;

/// A listener on a random free loopback port of `TEST_PORTS`.
fn bind_test_port() -> (TcpListener, u16) {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(TEST_PORTS);
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return (l, port);
        }
    }
}

/// A free loopback port never handed out before by this test binary.
pub fn free_port() -> u16 {
    loop {
        let (_probe, port) = bind_test_port();
        if claim(port) {
            return port;
        }
    }
}

/// Records `port` as handed out; false if it was before.
fn claim(port: u16) -> bool {
    let mut taken = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    if taken.contains(&port) {
        return false;
    }
    taken.push(port);
    true
}

/// A loopback port free for both UDP and TCP (for a DNS server).
pub fn free_udp_port() -> u16 {
    loop {
        let (_tcp, port) = bind_test_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() && claim(port) {
            return port;
        }
    }
}

impl Ports {
    /// Six distinct free ports: all are held open until all are chosen, so
    /// the same port is never handed out twice to one node.
    pub fn pick() -> Ports {
        let mut held: Vec<TcpListener> = Vec::new();
        let mut p: Vec<u16> = Vec::new();
        while p.len() < 6 {
            let (l, port) = bind_test_port();
            if claim(port) {
                p.push(port);
            }
            held.push(l);
        }
        Ports {
            smtp: p[0],
            submission: p[1],
            submissions: p[2],
            lmtp: p[3],
            https: p[4],
            http: p[5],
        }
    }
}

/// A data folder with an `appliance.toml`, and the processes running on it.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub ports: Ports,
    pub config: PathBuf,
    procs: Vec<(String, Child)>,
    /// The console admin password printed on first start, if seen.
    pub admin_password: Option<String>,
    /// The node's own DNS server: an empty zone, every name NXDOMAIN
    /// (tests with a zone of their own point `nameservers` elsewhere).
    _dns: peers::Dns,
}

impl Node {
    /// A fresh node: `campusmail init`, then the test's ports and fast retries.
    pub fn new() -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("appliance.toml");
        let out = Command::new(BIN)
            .args(["--config", config.to_str().unwrap(), "init"])
            .output()
            .expect("run campusmail init");
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Never the internet: DNS goes to a server of the test's own. It
        // starts first, so the node's ports cannot be the one it took.
        let dns = peers::Dns::start(&[]);
        let ports = Ports::pick();
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text
            .replace("127.0.0.1:2525", &format!("127.0.0.1:{}", ports.smtp))
            .replace("127.0.0.1:2587", &format!("127.0.0.1:{}", ports.submission))
            .replace(
                "127.0.0.1:2465",
                &format!("127.0.0.1:{}", ports.submissions),
            )
            .replace("127.0.0.1:2424", &format!("127.0.0.1:{}", ports.lmtp))
            .replace("127.0.0.1:8443", &format!("127.0.0.1:{}", ports.https))
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", ports.http))
            .replace("retry_initial = \"1m\"", "retry_initial = \"1s\"")
            .replace("max_message_bytes = 52428800", "max_message_bytes = 200000");
        let text = text.replace(
            "nameservers = []",
            &format!("nameservers = [\"{}\"]", dns.addr()),
        );
        std::fs::write(&config, text).unwrap();
        Node {
            dir,
            ports,
            config,
            procs: Vec::new(),
            admin_password: None,
            _dns: dns,
        }
    }

    /// Replaces `from` with `to` in appliance.toml (before `start`).
    pub fn edit_config(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains(from), "{from:?} not in appliance.toml");
        std::fs::write(&self.config, text.replacen(from, to, 1)).unwrap();
    }

    /// Sets `key = value` in appliance.toml (the key's first occurrence).
    pub fn set_key(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let prefix = format!("{key} = ");
        let mut found = false;
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                if !found && l.starts_with(&prefix) {
                    found = true;
                    format!("{prefix}{value}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert!(found, "no key {key} in appliance.toml");
        std::fs::write(&self.config, lines.join("\n") + "\n").unwrap();
    }

    /// Routes mail for `domain` to `target` ("host:port"), before DNS.
    pub fn add_transport(&self, domain: &str, target: &str) {
        self.edit_config(
            "[routing.transports]\n",
            &format!("[routing.transports]\n\"{domain}\" = \"{target}\"\n"),
        );
    }

    /// A node with domain campus.test and users alice and bob, running every role.
    pub fn with_users() -> Node {
        let mut node = Node::new();
        node.cli_ok(&["domain", "add", DOMAIN], None);
        node.add_user("alice");
        node.add_user("bob");
        node.start("all");
        node
    }

    pub fn add_user(&self, name: &str) {
        let address = format!("{name}@{DOMAIN}");
        self.cli_ok(
            &["user", "add", &address, "--password-stdin"],
            Some(&password_of(name)),
        );
    }

    /// Runs a management command; returns its output.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn campusmail");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{input}\n").as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().expect("campusmail output")
    }

    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "campusmail {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `campusmail run --role ROLE` and waits until it says it is ready.
    pub fn start(&mut self, role: &str) {
        let log = std::fs::File::create(self.dir.path().join(format!("{role}.log"))).unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(["run", "--role", role])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn campusmail run");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line == "ready" => break,
                Ok(line) => {
                    if let Some(pw) = line.split("(shown only this once): ").nth(1) {
                        self.admin_password = Some(pw.trim().to_string());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "campusmail run --role {role} did not become ready: {}",
                        self.log(role)
                    );
                }
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        self.procs.push((role.to_string(), child));
    }

    /// SIGKILLs the process running `role`.
    pub fn kill(&mut self, role: &str) {
        if let Some(i) = self.procs.iter().position(|(r, _)| r == role) {
            let (_, mut child) = self.procs.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self, role: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{role}.log"))).unwrap_or_default()
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn smtp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.smtp)
    }

    /// A logged-in webmail client for `name`.
    pub fn web_login(&self, name: &str) -> Web {
        let web = Web::new(self);
        let (status, body) = web.login(&format!("{name}@{DOMAIN}"), &password_of(name));
        assert_eq!(status, 303, "login of {name} failed: {body}");
        web
    }

    /// A client signed in to the console as `admin`, with the password the
    /// first start printed. `lang` (e.g. "en") fixes the console's
    /// language from then on; None keeps the default (Korean).
    pub fn console_login(&self, lang: Option<&str>) -> Web {
        let web = Web::new(self);
        let path = match lang {
            Some(l) => format!("/admin/login?lang={l}"),
            None => "/admin/login".to_string(),
        };
        let page = web.get(&path);
        assert_eq!(page.status, 200, "{}", page.body);
        let token = Web::csrf_of(&page.body);
        let password = self
            .admin_password
            .clone()
            .expect("admin password printed on first start");
        let r = web.post(
            "/admin/login",
            &[
                ("name", "admin"),
                ("password", &password),
                ("csrf_token", &token),
            ],
        );
        assert_eq!(r.status, 303, "admin login: {}", r.body);
        web
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for (_, child) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn password_of(name: &str) -> String {
    format!("{name}-secret-pw")
}

pub fn address_of(name: &str) -> String {
    format!("{name}@{DOMAIN}")
}

/// Polls `check` until it returns Some, for at most `secs` seconds.
pub fn wait_until<T>(secs: u64, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Delivers one message from prof@example.org to `to` over SMTP with
/// swaks: `subject`, plus `headers` (e.g. "Message-ID: <x@y>").
pub fn send_with(node: &Node, to: &str, headers: &[&str], subject: &str) {
    let mut args = vec![
        "--server".to_string(),
        node.smtp_addr(),
        "--from".into(),
        "prof@example.org".into(),
        "--to".into(),
        to.into(),
        "--header".into(),
        format!("Subject: {subject}"),
    ];
    for h in headers {
        args.push("--add-header".into());
        args.push(h.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, t) = swaks(&args);
    assert!(ok, "{t}");
}

/// Runs swaks with `args`; returns (exit success, full transcript).
pub fn swaks(args: &[&str]) -> (bool, String) {
    let out = Command::new("swaks")
        .args(["--timeout", "30", "--helo", "client.example.org"])
        .args(args)
        .output()
        .expect("swaks is installed (apt-get install swaks)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Sends the fixture `tests/fixtures/<name>` verbatim (headers and body) to
/// alice on the MX port, as another server would.
pub fn send_fixture(node: &Node, name: &str) {
    let data = format!("@{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "sender@campus.ac.kr",
        "--to",
        &address_of("alice"),
        "--data",
        &data,
    ]);
    assert!(ok, "{name}: {t}");
}

/// Submits as `user` (password `password_of(user)`) on the STARTTLS
/// submission port with AUTH PLAIN, from `from` to `to`; `extra` are more
/// swaks arguments (headers, body). Returns (success, transcript).
pub fn submit_as(node: &Node, user: &str, from: &str, to: &str, extra: &[&str]) -> (bool, String) {
    let server = format!("127.0.0.1:{}", node.ports.submission);
    let (login, password) = (address_of(user), password_of(user));
    let mut args = vec![
        "--server",
        &server,
        "-tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        &login,
        "--auth-password",
        &password,
        "--from",
        from,
        "--to",
        to,
    ];
    args.extend_from_slice(extra);
    swaks(&args)
}

/// A raw SMTP conversation for bytes no well-behaved client sends.
pub struct RawSmtp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RawSmtp {
    pub fn connect(addr: &str) -> RawSmtp {
        let stream = TcpStream::connect(addr.parse::<SocketAddr>().unwrap()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut raw = RawSmtp { stream, reader };
        let greeting = raw.reply();
        assert!(greeting.starts_with("220"), "{greeting}");
        raw
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to SMTP server");
    }

    /// Sends a command line and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    pub fn read_to_end(&mut self) -> String {
        let mut s = String::new();
        let _ = self.reader.read_to_string(&mut s);
        s
    }
}

/// A browser-like webmail client: curl with a cookie jar, TLS to the
/// self-signed certificate (-k: the test made that certificate itself).
pub struct Web {
    base: String,
    jar: tempfile::NamedTempFile,
}

pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Web {
    pub fn new(node: &Node) -> Web {
        Web::at(node.ports.https)
    }

    /// A client of the webmail on loopback port `https` (a node that may
    /// be restarted meanwhile keeps its port).
    pub fn at(https: u16) -> Web {
        Web {
            base: format!("https://127.0.0.1:{https}"),
            jar: tempfile::NamedTempFile::new().unwrap(),
        }
    }

    fn curl(&self, extra: &[&str], url: &str) -> Response {
        let headers = tempfile::NamedTempFile::new().unwrap();
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "30", "-o", "-", "-w", "%{http_code}"])
            .arg("-D")
            .arg(headers.path())
            .arg("-b")
            .arg(self.jar.path())
            .arg("-c")
            .arg(self.jar.path())
            .args(extra)
            .arg(url)
            .output()
            .expect("curl is installed");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = text.split_off(text.len().saturating_sub(3));
        Response {
            status: code.parse().unwrap_or(0),
            headers: std::fs::read_to_string(headers.path()).unwrap_or_default(),
            body: text,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.curl(&[], &format!("{}{}", self.base, path))
    }

    /// POSTs a urlencoded form; values are encoded by curl.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut args = Vec::new();
        for (k, v) in fields {
            args.push("--data-urlencode".to_string());
            args.push(format!("{k}={v}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.curl(&args, &format!("{}{}", self.base, path))
    }

    /// The CSRF token in a page's form.
    pub fn csrf_of(body: &str) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = body
            .find(marker)
            .map(|i| i + marker.len())
            .expect("a csrf_token field");
        let end = body[start..].find('"').unwrap() + start;
        body[start..end].to_string()
    }

    /// Logs in through the form; returns the POST's status and body.
    pub fn login(&self, address: &str, password: &str) -> (u16, String) {
        let page = self.get("/login");
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let token = Web::csrf_of(&page.body);
        let r = self.post(
            "/login",
            &[
                ("address", address),
                ("password", password),
                ("csrf_token", &token),
            ],
        );
        (r.status, r.body)
    }

    /// The inbox page's HTML.
    pub fn inbox(&self) -> String {
        let r = self.get("/mail");
        assert_eq!(r.status, 200, "inbox: {}", r.body);
        r.body
    }

    /// Message view links in the inbox: `/mail/message/<id>`.
    pub fn message_links(&self) -> Vec<String> {
        let body = self.inbox();
        let mut links = Vec::new();
        let mut rest = body.as_str();
        while let Some(i) = rest.find("href=\"/mail/message/") {
            let s = &rest[i + 6..];
            let end = s.find('"').unwrap();
            let link = s[..end].to_string();
            if !links.contains(&link) {
                links.push(link);
            }
            rest = &s[end..];
        }
        links
    }
}

/// A file for `Web::post_multipart`: form field, file on disk, the file
/// name the browser reports, and its type.
pub struct Upload<'a> {
    pub field: &'a str,
    pub path: &'a Path,
    pub name: &'a str,
    pub content_type: &'a str,
}

impl Web {
    /// POSTs a multipart/form-data form as a browser does (curl -F); text
    /// values are sent literally (--form-string).
    pub fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[Upload<'_>],
    ) -> Response {
        let mut args = Vec::new();
        for (k, v) in fields {
            args.push("--form-string".to_string());
            args.push(format!("{k}={v}"));
        }
        for f in files {
            args.push("-F".to_string());
            args.push(format!(
                "{}=@{};filename={};type={}",
                f.field,
                f.path.display(),
                f.name,
                f.content_type
            ));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.curl(&args, &format!("{}{}", self.base, path))
    }

    /// Links in a page that start with `prefix` (href values, in order).
    pub fn links_in(body: &str, prefix: &str) -> Vec<String> {
        let marker = format!("href=\"{prefix}");
        let mut links = Vec::new();
        let mut rest = body;
        while let Some(i) = rest.find(&marker) {
            let s = &rest[i + 6..];
            let end = s.find('"').unwrap();
            let link = html_unescape(&s[..end]);
            if !links.contains(&link) {
                links.push(link);
            }
            rest = &s[end..];
        }
        links
    }
}

/// The decoded value of the form field `name` in a page (an input's value
/// or a textarea's content); None when there is no such field.
pub fn form_field(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = body.find(&marker)?;
    let tag_start = body[..at].rfind('<')?;
    if body[tag_start..].starts_with("<textarea") {
        let open_end = at + body[at..].find('>')? + 1;
        let close = open_end + body[open_end..].find("</textarea>")?;
        let content = &body[open_end..close];
        // The HTML parser drops one newline right after the start tag.
        let content = content.strip_prefix('\n').unwrap_or(content);
        return Some(html_unescape(content));
    }
    let tag_end = at + body[at..].find('>')?;
    let tag = &body[tag_start..tag_end];
    let value_at = tag.find("value=\"")? + 7;
    let value_end = value_at + tag[value_at..].find('"')?;
    Some(html_unescape(&tag[value_at..value_end]))
}

/// Undoes askama's HTML escaping.
pub fn html_unescape(text: &str) -> String {
    text.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// A raw SMTP submission session over STARTTLS, trusting exactly the
/// node's certificate (for exchanges swaks cannot make, such as a SASL
/// PLAIN authorization identity).
pub struct SubmissionTls {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    input: Vec<u8>,
}

impl SubmissionTls {
    pub fn connect(node: &Node) -> SubmissionTls {
        let mut raw = RawSmtp::connect(&format!("127.0.0.1:{}", node.ports.submission));
        assert!(raw.cmd("EHLO client.example.org").starts_with("250"));
        assert!(raw.cmd("STARTTLS").starts_with("220"));
        let config = campusmail::tls::pinned::client_config(&node.data().join("tls/cert.pem"))
            .expect("the node's certificate");
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(config, name.to_owned()).unwrap();
        let mut s = SubmissionTls {
            tls: rustls::StreamOwned::new(conn, raw.stream),
            input: Vec::new(),
        };
        assert!(s.cmd("EHLO client.example.org").starts_with("250"));
        s
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.tls
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write over TLS");
        let mut all = String::new();
        loop {
            while !self.input.contains(&b'\n') {
                let mut buf = [0u8; 4096];
                let n = self.tls.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    return all;
                }
                self.input.extend_from_slice(&buf[..n]);
            }
            let end = self.input.iter().position(|&b| b == b'\n').unwrap();
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).into_owned();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    /// `AUTH PLAIN` with `authzid NUL authcid NUL password`; the reply.
    pub fn auth_plain(&mut self, authzid: &str, authcid: &str, password: &str) -> String {
        use base64::Engine as _;
        let plain = format!("{authzid}\0{authcid}\0{password}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
        self.cmd(&format!("AUTH PLAIN {encoded}"))
    }
}

/// The id of the folder called `name` in the page's folder list.
pub fn folder_id(body: &str, name: &str) -> Option<String> {
    let marker = "href=\"/mail?folder=";
    let mut rest = body;
    while let Some(i) = rest.find(marker) {
        let s = &rest[i + marker.len()..];
        let end = s.find('"')?;
        let id = &s[..end];
        let text = &s[end + 2..];
        if text.starts_with(name) && text[name.len()..].starts_with(['<', ' ', '\n']) {
            return Some(id.to_string());
        }
        rest = &s[end..];
    }
    None
}

/// Message ids listed on a page, in order.
pub fn ids_on(body: &str) -> Vec<String> {
    Web::links_in(body, "/mail/message/")
        .into_iter()
        .map(|l| l.trim_start_matches("/mail/message/").to_string())
        .collect()
}
