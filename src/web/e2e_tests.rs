//! Tests of the whole web stack through its real ports: a real store and
//! directory in a temp folder, a self-signed certificate, and a small
//! rustls + HTTP/1.1 client (no curl needed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{start, WebContext, WebHandle};

pub(super) struct Stack {
    pub(super) web: WebHandle,
    client_tls: Arc<rustls::ClientConfig>,
    pub(crate) store: Arc<crate::store::Store>,
    _dir: tempfile::TempDir,
}

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Response {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .find_map(|(_, v)| {
                let first = v.split(';').next()?;
                let (n, value) = first.split_once('=')?;
                (n == name).then(|| value.to_string())
            })
    }
}

pub(super) fn setup() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[node]\nname = \"node-a\"\nhostname = \"localhost\"\ndata_dir = \"{d}\"\n\
         [mailbox]\nhttps_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\
         public_url = \"https://mail.example.ac.kr\"\npage_size = 2\n\
         [tls]\ncert = \"{d}/cert.pem\"\nkey = \"{d}/key.pem\"\n",
        d = dir.path().display()
    );
    let config: crate::config::Config = toml::from_str(&text).unwrap();
    crate::tls::ensure_certificate(&config).unwrap();
    let tls = crate::tls::server_config(&config).unwrap();
    let directory = crate::directory::Directory::open(
        &dir.path().join("directory"),
        &dir.path().join("snapshot.json"),
    )
    .unwrap();
    directory.add_domain("example.ac.kr").unwrap();
    directory
        .add_user("hong@example.ac.kr", "correct horse")
        .unwrap();
    directory
        .add_user("old@example.ac.kr", "old password")
        .unwrap();
    directory.set_enabled("old@example.ac.kr", false).unwrap();
    let store = Arc::new(crate::store::Store::open(&dir.path().join("store"), "node-a").unwrap());

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&config.tls.cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let web = start(WebContext {
        config: Arc::new(config),
        store: Arc::clone(&store),
        directory: Arc::new(directory),
        tls,
    })
    .unwrap();
    Stack {
        web,
        client_tls: Arc::new(client_tls),
        store,
        _dir: dir,
    }
}

fn parse(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

fn request_bytes(method: &str, path: &str, cookies: &str, body: Option<&str>) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if !cookies.is_empty() {
        req.push_str(&format!("Cookie: {cookies}\r\n"));
    }
    if let Some(body) = body {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        req.push_str("\r\n");
    }
    req.into_bytes()
}

impl Stack {
    pub(super) fn https(
        &self,
        method: &str,
        path: &str,
        cookies: &str,
        body: Option<&str>,
    ) -> Response {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::clone(&self.client_tls), name).unwrap();
        let sock = TcpStream::connect(self.web.https_addr()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(&request_bytes(method, path, cookies, body))
            .unwrap();
        let mut raw = Vec::new();
        // The server may end without close_notify after Connection: close.
        let _ = tls.read_to_end(&mut raw);
        parse(&raw)
    }

    pub(super) fn login(&self, address: &str, password: &str) -> Response {
        let form = self.https("GET", "/login", "", None);
        let cookie = form.cookie("cm_login_csrf").unwrap();
        let token = hidden_token(&form.body);
        let body = format!(
            "address={}&password={}&csrf_token={token}",
            crate::web::form::encode(address),
            crate::web::form::encode(password)
        );
        self.https(
            "POST",
            "/login",
            &format!("cm_login_csrf={cookie}"),
            Some(&body),
        )
    }
}

fn plain(addr: SocketAddr, path: &str) -> Response {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.write_all(&request_bytes("GET", path, "", None))
        .unwrap();
    let mut raw = Vec::new();
    let _ = sock.read_to_end(&mut raw);
    parse(&raw)
}

pub(super) fn hidden_token(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").unwrap();
    let rest = &html[at + "name=\"csrf_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn deliver(store: &crate::store::Store, subject: &str) -> String {
    let raw = format!(
        "From: Kim <kim@example.ac.kr>\r\nTo: hong@example.ac.kr\r\nSubject: {subject}\r\n\
         Date: Tue, 5 Mar 2024 14:07:00 +0900\r\n\r\nHello\r\n"
    );
    store
        .deliver("hong@example.ac.kr", "INBOX", raw.as_bytes())
        .unwrap()
        .to_string()
}

#[test]
fn login_inbox_message_logout_through_tls() {
    let stack = setup();
    let first = deliver(&stack.store, "<script>alert(1)</script>");
    for i in 0..3 {
        deliver(&stack.store, &format!("paging {i}"));
    }

    let root = stack.https("GET", "/", "", None);
    assert_eq!(root.status, 303);
    assert_eq!(root.header("Location"), Some("/login"));

    let page = stack.https("GET", "/login", "", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html lang=\"ko\">"));
    assert!(page
        .header("Content-Security-Policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));

    let wrong = stack.login("hong@example.ac.kr", "wrong");
    assert_eq!(wrong.status, 401);
    let unknown = stack.login("ghost@example.ac.kr", "wrong");
    assert_eq!(unknown.status, 401);
    let disabled = stack.login("old@example.ac.kr", "old password");
    assert_eq!(disabled.status, 401);
    assert_ne!(
        wrong.body.contains("사용이 중지"),
        disabled.body.contains("사용이 중지")
    );

    let no_csrf = stack.https(
        "POST",
        "/login",
        "",
        Some("address=hong%40example.ac.kr&password=correct+horse&csrf_token=x"),
    );
    assert_eq!(no_csrf.status, 403);
    assert!(no_csrf.cookie("cm_session").is_none());

    let ok = stack.login("hong@example.ac.kr", "correct horse");
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("Location"), Some("/mail"));
    let session = ok.cookie("cm_session").unwrap();
    let set_cookie = ok
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with("cm_session="))
        .unwrap();
    assert!(set_cookie.1.contains("HttpOnly") && set_cookie.1.contains("Secure"));
    let jar = format!("cm_session={session}");

    let inbox = stack.https("GET", "/mail", &jar, None);
    assert_eq!(inbox.status, 200);
    assert!(!inbox.body.contains("<script>"));
    assert!(
        inbox.body.contains("/mail?page=2"),
        "paging with page_size 2"
    );
    let page2 = stack.https("GET", "/mail?page=2&lang=en", &jar, None);
    assert_eq!(page2.status, 200);
    assert!(page2.body.contains("<html lang=\"en\">"));
    assert!(page2.body.contains(&format!("/mail/message/{first}")));
    assert_eq!(stack.https("GET", "/mail?page=x", &jar, None).status, 400);

    let message = stack.https("GET", &format!("/mail/message/{first}"), &jar, None);
    assert_eq!(message.status, 200);
    assert!(!message.body.contains("<script>"));
    let missing = stack.https("GET", "/mail/message/node-a.fffff", &jar, None);
    assert_eq!(missing.status, 404);
    let bad = stack.https("GET", "/mail/message/..%2f..%2fetc", &jar, None);
    assert_eq!(bad.status, 404);

    let css = stack.https("GET", "/static/webmail.css", "", None);
    assert_eq!(css.status, 200);
    assert!(css.header("Content-Type").unwrap().starts_with("text/css"));

    let csrf = hidden_token(&inbox.body);
    let refused = stack.https("POST", "/logout", &jar, Some("csrf_token=nope"));
    assert_eq!(refused.status, 403);
    let out = stack.https("POST", "/logout", &jar, Some(&format!("csrf_token={csrf}")));
    assert_eq!(out.status, 303);
    assert_eq!(out.header("Location"), Some("/login"));
    let after = stack.https("GET", "/mail", &jar, None);
    assert_eq!(after.status, 303);
}

#[test]
fn a_second_login_ends_the_first_with_a_notice() {
    let stack = setup();
    let first = stack.login("hong@example.ac.kr", "correct horse");
    let first_jar = format!("cm_session={}", first.cookie("cm_session").unwrap());
    let second = stack.login("hong@example.ac.kr", "correct horse");
    let second_jar = format!("cm_session={}", second.cookie("cm_session").unwrap());

    // `/` sends the ended cookie on to the login page, which says why.
    let root = stack.https("GET", "/", &first_jar, None);
    assert_eq!(root.status, 303);
    assert_eq!(root.header("Location"), Some("/login"));
    let ended = stack.https("GET", "/login", &first_jar, None);
    assert_eq!(ended.status, 200);
    assert!(ended.body.contains("다른 곳에서 로그인"), "{}", ended.body);
    assert!(ended.body.contains("127.0.0.1"));
    assert_eq!(ended.cookie("cm_session").as_deref(), Some(""));
    assert_eq!(stack.https("GET", "/mail", &second_jar, None).status, 200);

    // A mail page reached with an ended cookie says it too.
    let third = stack.login("hong@example.ac.kr", "correct horse");
    assert_eq!(third.status, 303);
    let ended = stack.https("GET", "/mail?lang=en", &second_jar, None);
    assert_eq!(ended.status, 200);
    assert!(ended.body.contains("logged in elsewhere"), "{}", ended.body);
    // Shown once; afterwards the old cookie just leads to the login page.
    assert_eq!(stack.https("GET", "/mail", &second_jar, None).status, 303);
}

#[test]
fn html_mail_is_framed_with_its_own_csp_and_images_wait_for_consent() {
    let stack = setup();
    let raw = "From: Park <park@example.ac.kr>\r\nTo: hong@example.ac.kr\r\n\
               Subject: news\r\nMIME-Version: 1.0\r\n\
               Content-Type: text/html; charset=utf-8\r\n\r\n\
               <p>Hi</p><img src=\"https://tracker.example/x.png\"><script>alert(1)</script>\r\n";
    let id = stack
        .store
        .deliver("hong@example.ac.kr", "INBOX", raw.as_bytes())
        .unwrap();
    let ok = stack.login("hong@example.ac.kr", "correct horse");
    let jar = format!("cm_session={}", ok.cookie("cm_session").unwrap());

    let page = stack.https("GET", &format!("/mail/message/{id}"), &jar, None);
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains(&format!("src=\"/mail/message/{id}/body\"")));
    assert!(page
        .body
        .contains("sandbox=\"allow-popups allow-popups-to-escape-sandbox\""));
    assert!(!page.body.contains("allow-scripts") && !page.body.contains("allow-same-origin"));
    assert!(page
        .body
        .contains(&format!("href=\"/mail/message/{id}?images=1\"")));

    let body = stack.https("GET", &format!("/mail/message/{id}/body"), &jar, None);
    assert_eq!(body.status, 200);
    let csp = body.header("Content-Security-Policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("https:"),
        "{csp}"
    );
    assert!(!body.body.contains("<script"));
    assert!(!body.body.contains("tracker.example"));

    let shown = stack.https(
        "GET",
        &format!("/mail/message/{id}/body?images=1"),
        &jar,
        None,
    );
    assert!(shown
        .header("Content-Security-Policy")
        .unwrap()
        .contains("https:"));
    assert!(shown.body.contains("tracker.example"));
    assert!(!shown.body.contains("<script"));

    // Nobody else's session reaches it.
    let other = stack.https("GET", &format!("/mail/message/{id}/body"), "", None);
    assert_eq!(other.status, 303);
}

#[test]
fn plain_http_redirects_and_the_internal_port_refuses_strangers() {
    let stack = setup();
    let redirect = plain(stack.web.http_addr(), "/mail?page=2");
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.header("Location"),
        Some("https://mail.example.ac.kr/mail?page=2")
    );
    let direct = plain(stack.web.internal_addr(), "/login");
    assert_eq!(direct.status, 403);
    assert!(!direct.body.contains("csrf_token"));
}

#[test]
fn a_silent_client_does_not_block_others() {
    let stack = setup();
    // Connect without a TLS handshake and keep the socket open.
    let _silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(stack.web.https_addr()).unwrap())
        .collect();
    let page = stack.https("GET", "/login", "", None);
    assert_eq!(page.status, 200);
}

#[test]
fn only_a_live_session_may_upload_a_large_compose_form() {
    let stack = setup();
    let webmail = stack.web.webmail();
    let client: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let mut req = crate::web::http::WebRequest::get("/mail/compose", client);
    req.method = crate::web::http::Method::Post;
    let small = crate::web::http::MAX_FORM_BODY;
    assert_eq!(webmail.body_limit(&req), small, "no session: a small body");
    req.cookies = format!("cm_session={}", crate::web::csrf::new_token());
    assert_eq!(webmail.body_limit(&req), small, "an unknown session");
    let (token, _) = webmail.sessions.login(
        "hong@example.ac.kr",
        client.ip(),
        super::webmail::unix_now_for_tests(),
    );
    req.cookies = format!("cm_session={token}");
    assert!(webmail.body_limit(&req) > small, "a live session uploads");
    req.path = "/login".into();
    assert_eq!(webmail.body_limit(&req), small, "other forms stay small");
}
