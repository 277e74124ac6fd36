//! A real browser for the previews page, headless, on loopback only, driven with fantoccini:
//! Debian's `chromium` through its `chromedriver`, or Debian's `firefox-esr` through
//! `geckodriver` (built from crates.io by scripts/test.sh; Debian has none). Chromium's console
//! is read through chromedriver's log endpoint, Firefox's through WebDriver BiDi
//! (`log.entryAdded` over the session's WebSocket). axe-core (downloaded by scripts/test.sh from
//! the npm registry, checked against its pinned digest) is run in the page.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const FIREFOX: &str = "/usr/bin/firefox-esr";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chromium,
    Firefox,
}

/// A WebDriver server on a free port, and a browser session in it; both end with the value.
pub struct Browser {
    pub client: Client,
    pub kind: Kind,
    driver: Child,
    /// The driver's output, shown when no session starts.
    output: tempfile::NamedTempFile,
    /// Firefox: the errors WebDriver BiDi reported, not yet taken by [`Browser::console_errors`].
    bidi_errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

/// geckodriver: GECKODRIVER, else on PATH.
fn geckodriver() -> Option<PathBuf> {
    std::env::var_os("GECKODRIVER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("geckodriver"))
                .find(|p| p.is_file())
        })
        .filter(|p| p.is_file())
}

/// Whether this machine can run the browser tests in `kind`; else the reason (a skip, or in CI
/// a failure).
pub fn missing(kind: Kind) -> Option<String> {
    let needs: &[(&str, &str)] = match kind {
        Kind::Chromium => &[(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")],
        Kind::Firefox => &[(FIREFOX, "firefox-esr")],
    };
    for (path, package) in needs {
        if !std::path::Path::new(path).exists() {
            return Some(format!("{path} (Debian package {package})"));
        }
    }
    if kind == Kind::Firefox && geckodriver().is_none() {
        return Some(
            "geckodriver (GECKODRIVER, or on PATH: scripts/test.sh builds it with cargo install)"
                .into(),
        );
    }
    if axe_path().is_none() {
        return Some(
            "axe-core (FLUX_EPHEMERAL_AXE: scripts/test.sh downloads it from the npm registry)"
                .into(),
        );
    }
    None
}

/// axe.min.js, as scripts/test.sh left it.
fn axe_path() -> Option<PathBuf> {
    std::env::var_os("FLUX_EPHEMERAL_AXE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
}

/// chromedriver's (non-W3C, still served in W3C mode) browser log: what the page's console said.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// Subscribe to the session's `log.entryAdded` over WebDriver BiDi and collect the errors into
/// `errors` until the session ends.
async fn bidi_log(url: &str, errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebDriver BiDi connects");
    let subscribe = json!({"id": 1, "method": "session.subscribe",
                           "params": {"events": ["log.entryAdded"]}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    // The subscription holds once its answer is back.
    while let Some(Ok(m)) = ws.next().await {
        let v: Value = serde_json::from_str(m.to_text().unwrap_or("{}")).unwrap_or_default();
        if v["id"] == 1 {
            assert_eq!(v["type"], "success", "session.subscribe: {v}");
            break;
        }
    }
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            let v: Value = serde_json::from_str(m.to_text().unwrap_or("{}")).unwrap_or_default();
            if v["method"] == "log.entryAdded" && v["params"]["level"] == "error" {
                let p = &v["params"];
                errors.lock().unwrap().push(format!(
                    "{} {}: {}",
                    p["type"].as_str().unwrap_or_default(),
                    p["source"]["context"].as_str().unwrap_or_default(),
                    p["text"].as_str().unwrap_or_default()
                ));
            }
        }
    });
}

impl Browser {
    /// Start the driver and a headless browser `width` × `height` pixels wide, with a new profile
    /// and nothing that reaches outside the machine.
    pub async fn start(kind: Kind, width: u32, height: u32) -> Browser {
        let port = super::servers::free_port();
        let profile = tempfile::tempdir().unwrap();
        let output = tempfile::NamedTempFile::new().unwrap();
        let (program, args, caps) = match kind {
            Kind::Chromium => (
                PathBuf::from(CHROMEDRIVER),
                vec![format!("--port={port}"), "--allowed-ips=127.0.0.1".into()],
                json!({
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--disable-dev-shm-usage", "--hide-scrollbars",
                            format!("--window-size={width},{height}"),
                            format!("--user-data-dir={}", profile.path().display()),
                        ],
                    },
                    "goog:loggingPrefs": {"browser": "ALL"},
                }),
            ),
            Kind::Firefox => (
                geckodriver().expect("geckodriver"),
                vec![
                    "--port".to_string(),
                    port.to_string(),
                    "--host".into(),
                    "127.0.0.1".into(),
                    // Each Firefox its own BiDi port (9222 for all would mix parallel tests up).
                    "--websocket-port".into(),
                    super::servers::free_port().to_string(),
                ],
                json!({
                    "browserName": "firefox",
                    "webSocketUrl": true,
                    // Dialogs wait for the test (with BiDi on, Firefox would dismiss them).
                    "unhandledPromptBehavior": "ignore",
                    "moz:firefoxOptions": {
                        "binary": FIREFOX,
                        "args": ["-headless", "-profile", profile.path().display().to_string()],
                        "prefs": {
                            // Nothing leaves the machine.
                            "app.update.disabledForTesting": true,
                            "browser.safebrowsing.malware.enabled": false,
                            "browser.safebrowsing.phishing.enabled": false,
                            "network.captive-portal-service.enabled": false,
                            "network.connectivity-service.enabled": false,
                            "datareporting.policy.dataSubmissionEnabled": false,
                            "toolkit.telemetry.reportingpolicy.firstRun": false,
                            "extensions.update.enabled": false,
                            "app.normandy.enabled": false,
                            "browser.region.network.url": "",
                            "network.dns.disableIPv6": true,
                            // Remote Settings as Mozilla's own test harness sets them.
                            "services.settings.server": "data:,#remote-settings-dummy/v1",
                        },
                    },
                }),
            ),
        };
        let driver = Command::new(program)
            .args(args)
            .stdout(output.reopen().unwrap())
            .stderr(output.reopen().unwrap())
            // Its own process group: the browser it starts ends with it, even after a panic.
            .process_group(0)
            .spawn()
            .expect("the WebDriver server starts");
        let caps: fantoccini::wd::Capabilities = caps.as_object().unwrap().clone();
        let start = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "no {kind:?} session: {e}\n{}",
                        std::fs::read_to_string(output.path()).unwrap_or_default()
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let bidi_errors = Default::default();
        if kind == Kind::Firefox {
            let url = client
                .capabilities()
                .and_then(|c| c.get("webSocketUrl"))
                .and_then(Value::as_str)
                .expect("geckodriver gives the session's WebDriver BiDi address")
                .to_string();
            bidi_log(&url, std::sync::Arc::clone(&bidi_errors)).await;
        }
        let browser = Browser {
            client,
            kind,
            driver,
            output,
            bidi_errors,
            _profile: profile,
        };
        browser.client.set_window_size(width, height).await.ok();
        browser
    }

    /// The errors the page's console reported since the last call. Chromium: its log at level
    /// SEVERE (script errors, CSP violations, failed loads). Firefox: WebDriver BiDi's log entries
    /// at level error (script errors, `console.error`).
    pub async fn console_errors(&self) -> Vec<String> {
        match self.kind {
            Kind::Chromium => {
                let v = self
                    .client
                    .issue_cmd(BrowserLog)
                    .await
                    .expect("browser log");
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            }
            Kind::Firefox => {
                // The events arrive a moment after the page runs.
                tokio::time::sleep(Duration::from_millis(300)).await;
                std::mem::take(&mut *self.bidi_errors.lock().unwrap())
            }
        }
    }

    /// axe-core's violations of `impact` (`serious`, `critical`) on the page as it is now.
    pub async fn axe(&self, impacts: &[&str]) -> Vec<Value> {
        let source = std::fs::read_to_string(axe_path().expect("axe-core")).unwrap();
        // WebDriver's scripts run outside the page's Content-Security-Policy.
        self.client
            .execute(&format!("{source}\n;return true;"), vec![])
            .await
            .expect("axe-core loads");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                    .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(' '))}))))
                    .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        result
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| impacts.contains(&v["impact"].as_str().unwrap_or_default()))
            .cloned()
            .collect()
    }

    /// The text of the dialog the page opened (it may open a moment after the click).
    pub async fn dialog(&self) -> String {
        let start = Instant::now();
        loop {
            match self.client.get_alert_text().await {
                Ok(text) => return text,
                Err(e) => assert!(start.elapsed() < Duration::from_secs(10), "no dialog: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A JavaScript expression's value in the page.
    pub async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// Wait until `expression` is true in the page.
    pub async fn until(&self, what: &str, expression: &str) {
        let start = Instant::now();
        while self.eval(expression).await != Value::Bool(true) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the window, written to `target/<name>`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// End the session (the browser quits), then the driver.
    pub async fn close(self) {
        self.client.clone().close().await.ok();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and every browser process it started.
        Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status()
            .ok();
        self.driver.kill().ok();
        self.driver.wait().ok();
    }
}
