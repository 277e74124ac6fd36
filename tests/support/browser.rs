//! A real browser for the previews page: Debian's `chromium` driven through its `chromedriver`
//! (both installed by scripts/test.sh) with fantoccini, headless, on loopback only. The browser's
//! console is read through chromedriver's log endpoint, and axe-core (downloaded by
//! scripts/test.sh from the npm registry, checked against its pinned digest) is run in the page.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver on a free port, and a browser session in it; both end with the value.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Whether this machine can run the browser tests; else the reason (a skip, or in CI a failure).
pub fn missing() -> Option<String> {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        if !std::path::Path::new(path).exists() {
            return Some(format!("{path} (Debian package {package})"));
        }
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

impl Browser {
    /// Start chromedriver and a headless Chromium `width` × `height` pixels wide, with a new
    /// profile and nothing that reaches outside the machine.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = super::servers::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
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
                        start.elapsed() < Duration::from_secs(30),
                        "no browser session: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let browser = Browser {
            client,
            driver,
            _profile: profile,
        };
        browser.client.set_window_size(width, height).await.ok();
        browser
    }

    /// What the page wrote to the console since the last call, at `level` (`SEVERE`: errors,
    /// CSP violations included) or above.
    pub async fn console(&self, level: &str) -> Vec<String> {
        let v = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log");
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == level)
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
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

    pub async fn close(mut self) {
        let client = self.client.clone();
        client.close().await.ok();
        self.driver.kill().ok();
        self.driver.wait().ok();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.driver.kill().ok();
        self.driver.wait().ok();
    }
}
