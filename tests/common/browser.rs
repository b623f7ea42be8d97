//! A headless Chromium driven through chromedriver's W3C WebDriver protocol,
//! so the webmail is tested by a real browser: its CSP, cookies, forms and
//! redirects exactly as a student's browser applies them.
//!
//! The protocol is JSON over HTTP/1.1 on loopback; this client speaks just
//! enough of it (one request per connection) to stay dependency-free.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// W3C WebDriver's key for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a phone-sized window
    /// (or `width` x `height`).
    pub fn start(width: u32, height: u32) -> Browser {
        let port = super::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let ready = super::wait_until(30, || {
            browser
                .try_request("GET", "/status", None)
                .ok()
                .filter(|v| v["value"]["ready"] == json!(true))
        });
        assert!(ready.is_some(), "chromedriver did not start");
        let profile_dir = browser._profile.path().display().to_string();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // The test appliance's certificate is self-signed, made by the test.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                // A Korean student's browser: Korean first in Accept-Language.
                "prefs": {"intl.accept_languages": "ko-KR,ko,en"},
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--lang=ko-KR",
                    format!("--user-data-dir={profile_dir}"),
                    format!("--window-size={width},{height}"),
                ]
            }
        }}});
        let reply = browser.request("POST", "/session", Some(caps));
        browser.session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_string();
        browser
    }

    fn try_request(&self, method: &str, path: &str, body: Option<Value>) -> std::io::Result<Value> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        // chromedriver keeps the connection open whatever we ask, so read
        // exactly the headers and Content-Length bytes of body.
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let body_start = loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&raw[..body_start]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while raw.len() < body_start + length {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        serde_json::from_slice(&raw[body_start..]).map_err(std::io::Error::other)
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let reply = self
            .try_request(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        if reply["value"].get("error").is_some() {
            panic!("WebDriver {method} {path} failed: {reply}");
        }
        reply
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.request(
            "POST",
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        );
    }

    pub fn url(&self) -> String {
        self.request("GET", &self.session_path("/url"), None)["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (up to 15 s) for a navigation started by a click to land on a
    /// URL ending in `suffix`; returns the URL it ended on either way.
    pub fn url_after_navigation(&self, suffix: &str) -> String {
        super::wait_until(15, || {
            let url = self.url();
            url.ends_with(suffix).then_some(url)
        })
        .unwrap_or_else(|| self.url())
    }

    /// Waits (up to 15 s) for the page to contain `text` (a form posted
    /// back to its own URL changes no URL to wait for); returns the page
    /// source it ended with either way.
    pub fn source_containing(&self, text: &str) -> String {
        super::wait_until(15, || {
            let page = self.source();
            page.contains(text).then_some(page)
        })
        .unwrap_or_else(|| self.source())
    }

    pub fn source(&self) -> String {
        self.request("GET", &self.session_path("/source"), None)["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> String {
        let reply = self.request(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        reply["value"][ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {reply}"))
            .to_string()
    }

    /// Replaces the value of an input field with `text`, as typed by a person.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.request(
            "POST",
            &self.session_path(&format!("/element/{element}/clear")),
            Some(json!({})),
        );
        self.request(
            "POST",
            &self.session_path(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Chooses a file in a file input, as a person picking it would.
    pub fn attach_file(&self, css: &str, path: &std::path::Path) {
        let element = self.find(css);
        self.request(
            "POST",
            &self.session_path(&format!("/element/{element}/value")),
            Some(json!({ "text": path.display().to_string() })),
        );
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.request(
            "POST",
            &self.session_path(&format!("/element/{element}/click")),
            Some(json!({})),
        );
    }

    /// Runs `script` in the page and returns its value.
    pub fn eval(&self, script: &str) -> Value {
        self.request(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )["value"]
            .clone()
    }

    /// Saves a PNG screenshot (for a person to look at when a test fails).
    pub fn screenshot(&self, path: &std::path::Path) {
        let reply = self.request("GET", &self.session_path("/screenshot"), None);
        save_png(&reply, path);
    }
}

/// Writes the PNG of a WebDriver screenshot reply; never panics (it also
/// runs while a failing test unwinds).
fn save_png(reply: &Value, path: &std::path::Path) {
    use base64::Engine;
    if let Some(data) = reply["value"].as_str() {
        if let Ok(png) = base64::engine::general_purpose::STANDARD.decode(data) {
            let _ = std::fs::write(path, png);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failing test leaves a picture of the page it failed on in
        // target/tmp, named after the test, for a person to look at.
        if std::thread::panicking() && !self.session.is_empty() {
            let name = std::thread::current()
                .name()
                .unwrap_or("browser")
                .replace("::", "-");
            let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("failure-{name}.png"));
            if let Ok(reply) = self.try_request("GET", &self.session_path("/screenshot"), None) {
                save_png(&reply, &path);
                eprintln!("screenshot of the failing page: {}", path.display());
            }
        }
        if !self.session.is_empty() {
            let _ = self.try_request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
