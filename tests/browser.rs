//! The previews page in a real browser (Debian's Chromium through chromedriver): a GitOps
//! repository with previews of two applications, deployed from pull requests of the shared fake
//! GitHub, one of them titled like an attack. The rows and their links, the filters and the
//! search, no console errors, the hostile title as text, extend and destroy through the buttons
//! ending in commits, nothing without a token, axe-core with no serious violations, the phone
//! width, and the screenshots in `target/` (README's copy is `docs/previews-page.png`).

mod support;

use serde_json::{json, Value};
use support::browser::{Browser, Kind};
use support::fake_forges::{github_pull, FakeGitHub};
use support::serving::Serving;
use support::TestEnv;

const READ: &str = "read-token-0123456789";
const WRITE: &str = "write-token-9876543210";
const HOSTILE: &str = "<img src=x onerror=alert(1)>";
const WEB_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const API_SHA: &str = "562e173be03b8ff2efb05345d12df18815438a4b";
const DARK_SHA: &str = "9d4c0a1b2e3f405162738495a6b7c8d9e0f1a2b3";

const CONFIG: &str = "\
preview_url: \"https://{{ slug }}.preview.example.com/a/long/path/that/would/wrap/over/several/lines/at/this/width\"
ttl: 72h
applications:
  - name: web
    github_repository: org/web
  - name: api
    github_repository: org/api
";

/// Three previews of two applications, deployed by `/deploy-ephemeral` on their pull requests:
/// web's (titled like an attack) failed and api's ready, as Flux's commit statuses say (this
/// `serve` has no cluster), and a second api preview asleep.
async fn world() -> (TestEnv, FakeGitHub) {
    let env = TestEnv::new();
    env.commit_as_other(&[(".flux-ephemeral.yaml", Some(CONFIG))], "config");
    let gh = FakeGitHub::start("bot").await;
    for (repo, number, branch, sha, title) in [
        ("org/web", 7, "feature/login", WEB_SHA, HOSTILE),
        (
            "org/api",
            12,
            "feature/orders",
            API_SHA,
            "Add the orders endpoint",
        ),
        (
            "org/api",
            15,
            "feature/dark-mode",
            DARK_SHA,
            "Dark mode for the admin pages",
        ),
    ] {
        gh.permission(repo, "writer", "write");
        let mut pull = github_pull(repo, number, branch, sha, repo);
        pull["title"] = json!(title);
        gh.pull(repo, pull);
        support::fake_forges::github_comment_handled(
            &env,
            &gh,
            repo,
            number,
            "writer",
            "/deploy-ephemeral",
        )
        .await
        .ok();
    }
    let remote = env.remote.to_str().unwrap();
    env.run(&[
        "sleep",
        "--repo",
        remote,
        "--app",
        "api",
        "--branch",
        "feature/dark-mode",
    ])
    .ok();
    let context = |branch: &str| env.flux_status_context(branch);
    gh.post_status(
        "org/api",
        API_SHA,
        &context("feature/orders"),
        "success",
        "Reconciliation finished",
    );
    gh.post_status(
        "org/web",
        WEB_SHA,
        &context("feature/login"),
        "failure",
        "Health check failed after 2m0s: timeout waiting for: [Deployment/app-web/web status: 'InProgress']",
    );
    (env, gh)
}

/// The world served by `serve` (both UI tokens set) and a browser `width` × `height` pixels
/// wide; `None` (skipped, or failed in CI) where this machine has no such browser.
struct Page {
    env: TestEnv,
    _gh: FakeGitHub,
    _serving: Serving,
    base: String,
    b: Browser,
}

async fn open(kind: Kind, width: u32, height: u32) -> Option<Page> {
    if let Some(why) = support::browser::missing(kind) {
        support::skip(&why);
        return None;
    }
    let (env, gh) = world().await;
    let serving = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_TOKEN", "ghs-test-token".into()),
            ("FLUX_EPHEMERAL_UI_TOKEN", READ.into()),
            ("FLUX_EPHEMERAL_UI_WRITE_TOKEN", WRITE.into()),
        ],
    );
    let base = format!("http://127.0.0.1:{}", serving.port);
    let b = Browser::start(kind, width, height).await;
    Some(Page {
        env,
        _gh: gh,
        _serving: serving,
        base,
        b,
    })
}

/// The rows the filters and the search leave visible, by application.
async fn visible(b: &Browser) -> Value {
    b.eval(
        "Array.from(document.querySelectorAll('#previews tbody tr'))
            .filter(tr => !tr.hidden && tr.offsetParent !== null).map(tr => tr.dataset.app)",
    )
    .await
}

/// The bot's comment on a pull request, as it reads now.
fn last_comment(gh: &FakeGitHub, repo: &str, number: u64) -> String {
    gh.comments(repo, number)
        .last()
        .and_then(|c| c["body"].as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn no_console_errors(b: &Browser, when: &str) {
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors {when}: {errors:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_previews_page_in_chromium() {
    the_previews_page_in(Kind::Chromium, "previews-page.png").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_previews_page_in_firefox() {
    the_previews_page_in(Kind::Firefox, "previews-page-firefox.png").await;
}

/// What a person sees: who they are signed in as, only the buttons that apply to each preview
/// (the state instead of the others), and each preview link on one line, shortened, with the
/// whole address on hover.
async fn as_a_person_sees_it(b: &Browser, when: &str) {
    assert_eq!(
        b.eval("document.querySelector('.viewer').textContent.trim()")
            .await,
        "Signed in with the write token (read and write)",
        "{when}"
    );
    let rows = b
        .eval(
            "Object.fromEntries(Array.from(document.querySelectorAll('#previews tbody tr')).map(tr => [
                tr.cells[2].innerText.trim(),
                [Array.from(tr.querySelectorAll('button')).map(b => b.textContent.trim()),
                 Array.from(tr.querySelectorAll('.note')).map(n => n.textContent.trim())]]))",
        )
        .await;
    assert_eq!(
        rows["feature/dark-mode"],
        json!([["extend", "wake", "destroy"], ["asleep"]]),
        "{when}: {rows:#}"
    );
    assert_eq!(
        rows["feature/orders"],
        json!([["extend", "sleep", "destroy"], ["awake"]]),
        "{when}: {rows:#}"
    );
    let links = b
        .eval(
            "Array.from(document.querySelectorAll('a.preview')).map(a => ({
                lines: a.getClientRects().length,
                height: a.getBoundingClientRect().height,
                line: parseFloat(getComputedStyle(a).fontSize) * 2,
                title: a.title, href: a.href }))",
        )
        .await;
    let links = links.as_array().unwrap();
    assert_eq!(links.len(), 3, "{when}: {links:#?}");
    for l in links {
        assert_eq!(l["lines"], 1, "{when}: {l}");
        assert!(
            l["height"].as_f64().unwrap() < l["line"].as_f64().unwrap(),
            "{when}: wraps: {l}"
        );
        assert!(
            l["title"].as_str().unwrap().ends_with("/at/this/width"),
            "{when}: {l}"
        );
    }
}

async fn the_previews_page_in(kind: Kind, screenshot: &str) {
    let Some(Page {
        env,
        base,
        b,
        _gh: gh,
        _serving,
    }) = open(kind, 1400, 900).await
    else {
        return;
    };

    // Without a token: nothing.
    b.client.goto(&format!("{base}/")).await.unwrap();
    let text = b.eval("document.body ? document.body.innerText : ''").await;
    assert!(
        !text.as_str().unwrap().contains("feature/"),
        "data without a token: {text}"
    );
    assert_eq!(b.eval("document.querySelectorAll('table').length").await, 0);
    b.client
        .goto(&format!("{base}/api/previews"))
        .await
        .unwrap();
    let text = b.eval("document.body.innerText").await;
    assert!(!text.as_str().unwrap().contains("feature/"), "{text}");
    b.console_errors().await; // the 401s themselves are logged as failed loads

    // Sign in through the form: the token is typed, never in an address (nor the history).
    b.client.goto(&format!("{base}/signin")).await.unwrap();
    b.client
        .find(fantoccini::Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .send_keys(WRITE)
        .await
        .unwrap();
    b.client
        .find(fantoccini::Locator::Css("form.signin button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.until(
        "the three previews",
        "document.querySelectorAll('#previews tbody tr').length === 3",
    )
    .await;
    assert_eq!(
        b.client.current_url().await.unwrap().as_str(),
        format!("{base}/")
    );
    as_a_person_sees_it(&b, "as served").await;

    // The rows and their links.
    let rows = b
        .eval(
            "Array.from(document.querySelectorAll('#previews tbody tr')).map(tr => ({
                app: tr.dataset.app,
                branch: tr.cells[2].innerText.trim(),
                state: tr.dataset.state,
                links: Array.from(tr.querySelectorAll('a')).map(a => a.href),
                title: (tr.querySelector('.title') || {}).textContent,
                cells: Array.from(tr.cells).map(td => td.innerText.trim()),
            }))",
        )
        .await;
    let row = |branch: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["branch"] == branch)
            .unwrap_or_else(|| panic!("no {branch} row: {rows:#}"))
            .clone()
    };
    let (web, api, dark) = (
        row("feature/login"),
        row("feature/orders"),
        row("feature/dark-mode"),
    );
    assert_eq!(
        (&web["app"], &api["app"], &dark["app"]),
        (&json!("web"), &json!("api"), &json!("api"))
    );
    let links = |r: &Value| -> Vec<String> {
        r["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let web_links = links(&web);
    assert_eq!(web_links[0], "https://github.com/org/web/pull/7", "{web:#}");
    assert_eq!(
        web_links[1],
        format!("https://github.com/org/web/commit/{WEB_SHA}")
    );
    assert!(
        web_links[2].starts_with("https://feature-login-")
            && web_links[2].ends_with("/at/this/width"),
        "{web:#}"
    );
    assert_eq!(links(&api)[0], "https://github.com/org/api/pull/12");
    assert_eq!(api["cells"][2], "feature/orders");
    assert_eq!(api["cells"][3], "author");
    assert_eq!(api["cells"][4], &API_SHA[..12]);
    // Flux's verdicts, from its commit statuses, and the sleeping one from its file.
    assert_eq!(api["cells"][7], "ready");
    assert_eq!(web["state"], "failed");
    assert!(
        web["cells"][7]
            .as_str()
            .unwrap()
            .contains("Health check failed after 2m0s"),
        "{web:#}"
    );
    assert_eq!(dark["state"], "sleeping");
    let totals = b
        .eval("Object.fromEntries(Array.from(document.querySelectorAll('[data-total]')).map(e => [e.dataset.total, e.textContent]))")
        .await;
    assert_eq!(
        totals,
        json!({"previews": "3", "ready": "1", "failed": "1", "sleeping": "1", "expiring_soon": "0"})
    );
    assert!(
        api["cells"][6].as_str().unwrap().starts_with("in "),
        "{api:#}"
    );

    // The hostile title is text: no element made of it, no dialog opened by it.
    assert_eq!(web["title"].as_str().unwrap().trim(), HOSTILE);
    assert_eq!(b.eval("document.querySelectorAll('img').length").await, 0);
    assert!(b.client.get_alert_text().await.is_err(), "a dialog opened");
    no_console_errors(&b, "after loading").await;

    // Filters and search, without reloading.
    b.eval("window.sameDocument = true").await;
    b.client
        .find(fantoccini::Locator::Id("filter-app"))
        .await
        .unwrap()
        .select_by_value("api")
        .await
        .unwrap();
    assert_eq!(visible(&b).await, json!(["api", "api"]));
    b.client
        .find(fantoccini::Locator::Id("filter-app"))
        .await
        .unwrap()
        .select_by_value("")
        .await
        .unwrap();
    assert_eq!(visible(&b).await.as_array().unwrap().len(), 3);
    let state = b
        .client
        .find(fantoccini::Locator::Id("filter-state"))
        .await
        .unwrap();
    state.select_by_value("failed").await.unwrap();
    assert_eq!(visible(&b).await, json!(["web"]));
    state.select_by_value("sleeping").await.unwrap();
    assert_eq!(visible(&b).await, json!(["api"]));
    state.select_by_value("reconciling").await.unwrap();
    assert_eq!(visible(&b).await, json!([]));
    assert_eq!(
        b.eval("document.getElementById('empty').hidden").await,
        false
    );
    state.select_by_value("").await.unwrap();
    assert_eq!(
        b.eval("document.getElementById('empty').hidden").await,
        true
    );
    let search = b
        .client
        .find(fantoccini::Locator::Id("search"))
        .await
        .unwrap();
    search.send_keys("ORDERS").await.unwrap();
    assert_eq!(visible(&b).await, json!(["api"]));
    search.clear().await.unwrap();
    search.send_keys("onerror").await.unwrap();
    assert_eq!(
        visible(&b).await,
        json!(["web"]),
        "the title is searchable as text"
    );
    search.clear().await.unwrap();
    b.eval("document.getElementById('search').dispatchEvent(new Event('input'))")
        .await;
    assert_eq!(visible(&b).await.as_array().unwrap().len(), 3);

    // Refresh on demand redraws the rows from the API, in the same document.
    b.eval("document.getElementById('read-at').textContent = 'stale'")
        .await;
    b.eval("document.querySelector('#previews tbody').dataset.old = '1'")
        .await;
    b.client
        .find(fantoccini::Locator::Id("refresh"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.until(
        "the refreshed rows",
        "!document.querySelector('#previews tbody').dataset.old",
    )
    .await;
    assert_eq!(b.eval("window.sameDocument === true").await, true);
    let read_at = b
        .eval("document.getElementById('read-at').textContent")
        .await;
    assert!(read_at.as_str().unwrap().starts_with("20"), "{read_at}");
    assert_eq!(
        b.eval("document.querySelector('#previews tr[data-app=web] .title').textContent.trim()")
            .await,
        HOSTILE
    );
    assert_eq!(b.eval("document.querySelectorAll('img').length").await, 0);
    no_console_errors(&b, "after filtering and refreshing").await;

    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true,
        "sideways scrolling at 1400 px"
    );
    as_a_person_sees_it(&b, "after a refresh").await;

    // Accessibility: axe-core finds nothing serious.
    let serious = b.axe(&["serious", "critical"]).await;
    assert!(serious.is_empty(), "axe-core: {serious:#?}");

    // The screenshot for the README.
    let shot = b.screenshot(screenshot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Extend through its button: a commit that names who asked, and the result shown.
    let commits = env.commit_count();
    b.client
        .find(fantoccini::Locator::Css(
            "#previews tr[data-state='ready'] button[aria-label^='extend']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.until("the result", "!!document.querySelector('[role=status]')")
        .await;
    let said = b
        .eval("document.querySelector('[role=status]').textContent")
        .await;
    assert!(
        said.as_str().unwrap().contains("extended: commit"),
        "{said}"
    );
    assert_eq!(env.commit_count(), commits + 1);
    let message = env.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("Requested-by: write token (previews page)"),
        "{message}"
    );
    // The change hears of it, as after /extend-ephemeral.
    let said = last_comment(&gh, "org/api", 12);
    assert!(said.contains("now expires"), "{said}");
    no_console_errors(&b, "on the result page").await;
    b.client
        .find(fantoccini::Locator::LinkText("Back to the previews"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.until(
        "the page again",
        "document.querySelectorAll('#previews tbody tr').length === 3",
    )
    .await;

    // Destroy asks first: dismissed, nothing happens; accepted, the file goes in a commit.
    let destroy = "#previews tr[data-app='web'] button[aria-label^='destroy']";
    let commits = env.commit_count();
    b.client
        .find(fantoccini::Locator::Css(destroy))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let question = b.dialog().await;
    assert!(
        question.starts_with("Destroy the preview feature-login-"),
        "{question}"
    );
    b.client.dismiss_alert().await.unwrap();
    assert_eq!(env.commit_count(), commits);
    assert!(b
        .client
        .find(fantoccini::Locator::Id("previews"))
        .await
        .is_ok());
    b.client
        .find(fantoccini::Locator::Css(destroy))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.dialog().await;
    b.client.accept_alert().await.unwrap();
    b.until("the result", "!!document.querySelector('[role=status]')")
        .await;
    let said = b
        .eval("document.querySelector('[role=status]').textContent")
        .await;
    assert!(
        said.as_str().unwrap().contains("destroyed: commit"),
        "{said}"
    );
    assert_eq!(env.commit_count(), commits + 1);
    let files = env.git(&["ls-tree", "-r", "--name-only", "main"]);
    assert!(!files.contains("sync-web-"), "{files}");
    assert!(files.contains("sync-api-"), "{files}");
    // As after /destroy-ephemeral: the change is told, its deployment is inactive.
    let said = last_comment(&gh, "org/web", 7);
    assert!(
        said.contains("removed (asked on the previews page"),
        "{said}"
    );
    let deployment = gh.deployments("org/web").last().cloned().unwrap();
    let states: Vec<&str> = deployment["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states.last(), Some(&"inactive"), "{deployment:#}");
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.until(
        "two previews left",
        "document.querySelectorAll('#previews tbody tr').length === 2",
    )
    .await;
    no_console_errors(&b, "after the actions").await;

    // Signed out (the cookie gone): nothing again.
    b.client.delete_all_cookies().await.unwrap();
    b.client.goto(&format!("{base}/")).await.unwrap();
    let text = b.eval("document.body ? document.body.innerText : ''").await;
    assert!(!text.as_str().unwrap().contains("feature/"), "{text}");
    b.close().await;
}

/// At phone width every row stacks and nothing needs sideways scrolling; axe-core agrees there
/// too. The read role sees no buttons.
#[tokio::test(flavor = "multi_thread")]
async fn the_previews_page_at_phone_width_in_chromium() {
    at_phone_width(Kind::Chromium, "previews-page-phone.png").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_previews_page_at_phone_width_in_firefox() {
    at_phone_width(Kind::Firefox, "previews-page-phone-firefox.png").await;
}

async fn at_phone_width(kind: Kind, screenshot: &str) {
    let Some(Page {
        base,
        b,
        _gh,
        _serving,
        ..
    }) = open(kind, 412, 915).await
    else {
        return;
    };
    b.client
        .goto(&format!("{base}/?token={READ}"))
        .await
        .unwrap();
    b.until(
        "the three previews",
        "document.querySelectorAll('#previews tbody tr').length === 3",
    )
    .await;
    assert_eq!(
        b.eval("document.querySelectorAll('button[aria-label^=destroy]').length")
            .await,
        0
    );
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true,
        "sideways scrolling at phone width"
    );
    let serious = b.axe(&["serious", "critical"]).await;
    assert!(serious.is_empty(), "axe-core: {serious:#?}");
    no_console_errors(&b, "at phone width").await;
    let shot = b.screenshot(screenshot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 5_000);
    b.close().await;
}
