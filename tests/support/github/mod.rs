//! A stateful fake GitHub on 127.0.0.1 (wiremock), held to GitHub's own published contract: every
//! request must be an operation of GitHub's OpenAPI description with declared, valid parameters
//! and body, and every answer must be what GitHub documents for that operation and status, objects
//! closed (`super::contract`). A departure is recorded and fails the test when the fake goes away,
//! naming the operation and the field. The answers are built from GitHub's own examples
//! (`shapes.rs`); one file per resource answers its operations.

mod apps;
mod checks;
mod comments;
mod deployments;
pub mod git_server;
mod pulls;
mod repos;
pub mod shapes;
mod statuses;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::contract;

/// The time as GitHub writes it.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A deployment the fake holds, with its statuses in order.
struct Deployment {
    repo: String,
    value: Value,
    /// What the product asked for (`POST …/deployments`'s body).
    request: Value,
    statuses: Vec<Value>,
}

#[derive(Default)]
struct State {
    bot: String,
    /// (repo, number) → pull request (`pull-request`).
    pulls: BTreeMap<(String, u64), Value>,
    /// (repo, login) → role (read, triage, write, maintain, admin).
    permissions: BTreeMap<(String, String), String>,
    /// (repo, number) → comments (`issue-comment`).
    comments: BTreeMap<(String, u64), Vec<Value>>,
    /// (repo, sha, `status`), oldest first.
    statuses: Vec<(String, String, Value)>,
    /// (repo, number) → the paths the pull request changes.
    files: BTreeMap<(String, u64), Vec<String>>,
    deployments: Vec<Deployment>,
    /// (repo, sha) → check runs (`check-run`).
    check_runs: BTreeMap<(String, String), Vec<Value>>,
    /// Answer 500 for this page of a files listing.
    failing_files_page: Option<usize>,
    /// At most this many items a page in lists (GitHub allows 100).
    page_size: usize,
    /// (method, path) → status code to answer instead (a failing API).
    failures: BTreeMap<(String, String), u16>,
    /// A pull request that closes right after the first page of a listing was served (the
    /// listing shifts under the reader, as on GitHub).
    close_after_first_page: Option<(String, u64)>,
    /// What `GET /repos/{o}/{r}` says the token may push; `None`: no `permissions` at all.
    token_push: Option<bool>,
    base: String,
    next_id: u64,
    /// Departures from GitHub's contract, by the product or by the fake.
    violations: Vec<String>,
    /// The GitHub App, when the fake plays GitHub for one (else any token is taken).
    app: Option<apps::AppState>,
    /// Every request that counts against a rate limit (not a 304, not `GET /rate_limit`), in
    /// order: (who asked, `METHOD /path`).
    billed: Vec<(String, String)>,
    /// The requests answered `304 Not Modified` (free on GitHub), in order.
    not_modified: Vec<(String, String)>,
    /// (method, path, seconds): the next such request is a secondary rate limit (429 with
    /// `retry-after`), as GitHub answers a burst.
    throttle: Option<(String, String, u64)>,
    /// The ids of the comments that came as delivered commands.
    delivered: std::collections::BTreeSet<u64>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// One request, as the resource handlers see it.
struct Req {
    method: String,
    /// The path's segments, without GitHub Enterprise's `api/v3`.
    path: Vec<String>,
    query: Vec<(String, String)>,
    body: Value,
}

impl Req {
    fn query(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// `page` and `per_page` as GitHub reads them (30 a page by default, at most `cap`).
    fn paging(&self, cap: usize) -> (usize, usize) {
        let per_page = self
            .query("per_page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(30)
            .min(cap)
            .max(1);
        let page = self
            .query("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        (page, per_page)
    }
}

/// An answer: status, JSON body (none for 204/304), `Link` to the next page.
struct Answer {
    status: u16,
    body: Option<Value>,
    next: Option<String>,
}

impl Answer {
    fn ok(v: Value) -> Answer {
        Answer {
            status: 200,
            body: Some(v),
            next: None,
        }
    }
    fn created(v: Value) -> Answer {
        Answer {
            status: 201,
            body: Some(v),
            next: None,
        }
    }
    fn error(status: u16, message: &str) -> Answer {
        Answer {
            status,
            body: Some(shapes::error(message, status)),
            next: None,
        }
    }
    fn not_found() -> Answer {
        Answer::error(404, "Not Found")
    }
}

/// Page `page` of `all`, linked to the next one (same path and query, `page` moved on).
fn paged(s: &State, req: &Req, all: Vec<Value>, wrap: impl FnOnce(Vec<Value>) -> Value) -> Answer {
    let (page, per_page) = req.paging(s.page_size);
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let next = (page * per_page < total).then(|| {
        let mut q: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        q.push(format!("per_page={per_page}"));
        q.push(format!("page={}", page + 1));
        format!("{}/{}?{}", s.base, req.path.join("/"), q.join("&"))
    });
    Answer {
        status: 200,
        body: Some(wrap(items)),
        next,
    }
}

fn route(s: &mut State, req: &Req) -> Answer {
    let p: Vec<&str> = req.path.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    match (m, p.as_slice()) {
        ("GET", ["user"]) => Answer::ok(shapes::private_user(&s.bot)),
        ("GET", ["rate_limit"]) => Answer::ok(shapes::rate_limit()),
        (_, ["app", ..]) | (_, ["repos", _, _, "installation"]) => apps::route(s, req, &p),
        (_, ["repos", o, r, rest @ ..]) => {
            let repo = format!("{o}/{r}");
            match rest {
                [] | ["collaborators", ..] => repos::route(s, req, &repo, rest),
                ["pulls", ..] => pulls::route(s, req, &repo, &rest[1..]),
                ["issues", ..] => comments::route(s, req, &repo, &rest[1..]),
                ["statuses", sha] => statuses::create(s, req, &repo, sha),
                ["commits", sha, "status"] => statuses::combined(s, &repo, sha),
                ["commits", sha, "statuses"] => statuses::list(s, req, &repo, sha),
                ["commits", sha, "check-runs"] => checks::list(s, req, &repo, sha),
                ["deployments", ..] => deployments::route(s, req, &repo, &rest[1..]),
                _ => Answer::not_found(),
            }
        }
        _ => Answer::not_found(),
    }
}

struct Responder(Arc<Mutex<State>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let raw = request.url.path();
        // GitHub Enterprise's API lives under /api/v3 (Flux's Provider for a host other than
        // github.com calls it there).
        let path = raw.strip_prefix("/api/v3").unwrap_or(raw).to_string();
        let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        let rest = contract::github_rest();
        let op = match rest.map(|c| {
            c.request(&contract::Exchange {
                method: request.method.as_str(),
                path: &path,
                query: query.clone(),
                body: &request.body,
            })
        }) {
            Some(Ok(op)) => Some(op),
            Some(Err(v)) => {
                s.violations.push(v);
                return template(Answer::error(422, "Validation Failed"));
            }
            None => None,
        };
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let caller = apps::authorize(&s, auth, &seg);
        let throttled = s
            .throttle
            .as_ref()
            .is_some_and(|(m, p, _)| *m == request.method.as_str() && *p == path);
        let retry_after = if throttled {
            s.throttle.take().map(|(_, _, secs)| secs)
        } else {
            None
        };
        let mut answer = match (
            &caller,
            s.failures.get(&(request.method.to_string(), path.clone())),
        ) {
            _ if retry_after.is_some() => Answer::error(
                429,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            ),
            (Err(refused), _) => Answer {
                status: refused.status,
                body: refused.body.clone(),
                next: None,
            },
            (_, Some(code)) => Answer::error(*code, "Server Error"),
            (Ok(_), None) => {
                let req = Req {
                    method: request.method.to_string(),
                    path: segments.clone(),
                    query,
                    body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
                };
                route(&mut s, &req)
            }
        };
        // Conditional requests: an unchanged answer is a 304 with no body, where GitHub
        // documents one for the operation.
        let etag = (request.method.as_str() == "GET" && answer.status == 200).then(|| {
            use sha2::Digest;
            let body = answer
                .body
                .as_ref()
                .map(|b| b.to_string())
                .unwrap_or_default();
            format!(
                "\"{}\"",
                &hex::encode(sha2::Sha256::digest(body.as_bytes()))[..32]
            )
        });
        let unchanged = etag.as_ref().is_some_and(|e| {
            request
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                == Some(e.as_str())
                && op
                    .as_ref()
                    .zip(rest)
                    .is_none_or(|(op, rest)| rest.documents(op, 304))
        });
        if unchanged {
            answer = Answer {
                status: 304,
                body: None,
                next: None,
            };
        }
        let who = caller
            .as_ref()
            .map(|c| c.name())
            .unwrap_or_else(|_| "refused".into());
        if answer.status != 304 && path != "/rate_limit" {
            s.billed
                .push((who.clone(), format!("{} {path}", request.method)));
        } else if answer.status == 304 {
            s.not_modified
                .push((who.clone(), format!("{} {path}", request.method)));
        }
        let used = s.billed.iter().filter(|(w, _)| *w == who).count();
        // What is left, as the headers and `GET /rate_limit` say it: 5,000 less what was billed.
        let left = 5000usize.saturating_sub(used);
        if path == "/rate_limit" && answer.status == 200 {
            if let Some(body) = answer.body.as_mut() {
                for k in ["core", "rate"] {
                    let at = if k == "core" {
                        &mut body["resources"]["core"]
                    } else {
                        &mut body["rate"]
                    };
                    at["limit"] = serde_json::json!(5000);
                    at["remaining"] = serde_json::json!(left);
                    at["used"] = serde_json::json!(used);
                }
            }
        }
        if let (Some(rest), Some(op)) = (rest, op) {
            let bytes = answer
                .body
                .as_ref()
                .map(|b| b.to_string())
                .unwrap_or_default();
            if let Err(v) = rest.response(&op, answer.status, bytes.as_bytes()) {
                s.violations.push(v);
            }
        }
        let mut t = template(answer);
        if let Some(secs) = retry_after {
            t = t.insert_header("retry-after", secs.to_string().as_str());
        }
        if let Some(e) = etag {
            t = t.insert_header("ETag", e.as_str());
        }
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        t.insert_header("x-ratelimit-limit", "5000")
            .insert_header(
                "x-ratelimit-remaining",
                (5000usize.saturating_sub(used)).to_string().as_str(),
            )
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
    }
}

fn template(a: Answer) -> ResponseTemplate {
    let mut t = ResponseTemplate::new(a.status);
    if let Some(body) = a.body {
        t = t.set_body_json(body);
    }
    if let Some(next) = a.next {
        t = t.insert_header("Link", format!("<{next}>; rel=\"next\"").as_str());
    }
    t
}

/// Fails the test when the last handle on the fake goes, if anything departed from the contract.
struct Verdict(Arc<Mutex<State>>);

impl Drop for Verdict {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let v = std::mem::take(&mut self.0.lock().unwrap().violations);
        if !v.is_empty() {
            panic!(
                "the fake GitHub saw departures from GitHub's published contract:\n- {}",
                v.join("\n- ")
            );
        }
    }
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub server: Arc<MockServer>,
    state: Arc<Mutex<State>>,
    _verdict: Arc<Verdict>,
}

/// A pull request as GitHub's API returns it (`pull-request`).
pub fn github_pull(repo: &str, number: u64, branch: &str, sha: &str, head_repo: &str) -> Value {
    shapes::pull(repo, number, branch, sha, head_repo)
}

/// `who` comments `body` on pull request `number` of `repo`: the delivery handled by `handle`
/// against the GitOps repository of `env`, with this fake as the API.
pub async fn github_comment_handled(
    env: &super::TestEnv,
    gh: &FakeGitHub,
    repo: &str,
    number: u64,
    who: &str,
    body: &str,
) -> super::Run {
    let file = env.path("event.json");
    let event = super::payloads::github_comment(repo, number, who, body);
    contract::assert_github_webhook("issue_comment", &event);
    gh.delivered("issue_comment", &event);
    std::fs::write(&file, event.to_string()).unwrap();
    let mut c = env.command();
    c.args(["handle", "--event-name", "issue_comment", "--event-file"])
        .arg(&file)
        .args(["--repo", env.remote.to_str().unwrap()])
        .env("GITHUB_API_URL", gh.uri())
        .env("GITHUB_TOKEN", "ghs-test-token");
    super::run_async(c).await
}

impl FakeGitHub {
    /// The fake, with the token's user `bot`.
    pub async fn start(bot: &str) -> FakeGitHub {
        let server = Arc::new(MockServer::start().await);
        let state = Arc::new(Mutex::new(State {
            bot: bot.into(),
            next_id: 1000,
            page_size: 100,
            token_push: Some(true),
            base: server.uri(),
            ..State::default()
        }));
        Mock::given(wiremock::matchers::any())
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        FakeGitHub {
            server,
            _verdict: Arc::new(Verdict(state.clone())),
            state,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Lists come in pages of at most `n` items, linked with `Link: <…>; rel="next"`.
    pub fn page_size(&self, n: usize) {
        self.with(|s| s.page_size = n);
    }

    /// Answer `status` to `method path` from now on.
    pub fn fail(&self, method: &str, path: &str, status: u16) {
        self.with(|s| s.failures.insert((method.into(), path.into()), status));
    }

    /// Answer `method path` normally again.
    pub fn heal(&self, method: &str, path: &str) {
        self.with(|s| s.failures.remove(&(method.to_string(), path.to_string())));
    }

    pub fn pull(&self, repo: &str, pr: Value) {
        let n = pr["number"].as_u64().unwrap();
        self.with(|s| s.pulls.insert((repo.into(), n), pr));
    }

    /// The files pull request `number` changes (listed in pages of the page size).
    pub fn files(&self, repo: &str, number: u64, files: &[&str]) {
        let files = files.iter().map(|f| f.to_string()).collect();
        self.with(|s| s.files.insert((repo.into(), number), files));
    }

    /// Set check run `name` of `sha` (`status` queued/in_progress/completed, `conclusion`).
    pub fn check_run(
        &self,
        repo: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) {
        self.with(|s| {
            let id = s.id();
            let runs = s.check_runs.entry((repo.into(), sha.into())).or_default();
            runs.retain(|r| r["name"] != name);
            runs.push(shapes::check_run(id, name, status, conclusion, sha));
        });
    }

    /// Set the `details_url` of check run `name` of `sha` (a GitHub Actions job's is
    /// `https://github.com/OWNER/REPO/actions/runs/RUN/job/JOB`).
    pub fn check_run_details(&self, repo: &str, sha: &str, name: &str, url: &str) {
        self.with(|s| {
            for r in s.check_runs.entry((repo.into(), sha.into())).or_default() {
                if r["name"] == name {
                    r["details_url"] = Value::String(url.into());
                }
            }
        });
    }

    /// The deployments of `repo`, oldest first (`deployment`), each with the fake's record of its
    /// `statuses` in order added and the `request` that created it.
    pub fn deployments(&self, repo: &str) -> Vec<Value> {
        self.with(|s| {
            s.deployments
                .iter()
                .filter(|d| d.repo == repo)
                .map(|d| {
                    let mut v = d.value.clone();
                    v["statuses"] = Value::Array(d.statuses.clone());
                    v["request"] = d.request.clone();
                    v
                })
                .collect()
        })
    }

    /// Answer 500 for page `n` of every files listing from now on.
    pub fn fail_files_page(&self, n: usize) {
        self.with(|s| s.failing_files_page = Some(n));
    }

    /// What the repository endpoint says the token may push (`None`: says nothing).
    pub fn token_push(&self, push: Option<bool>) {
        self.with(|s| s.token_push = push);
    }

    /// Close pull request `number` of `repo` right after the first page of the next listing.
    pub fn close_after_first_page(&self, repo: &str, number: u64) {
        self.with(|s| s.close_after_first_page = Some((repo.into(), number)));
    }

    /// Pull request `number` of `repo` as the API shows it now.
    pub fn pull_value(&self, repo: &str, number: u64) -> Value {
        self.with(|s| s.pulls[&(repo.to_string(), number)].clone())
    }

    /// Change a pull request, e.g. close it or move its head.
    pub fn edit_pull(&self, repo: &str, number: u64, f: impl FnOnce(&mut Value)) {
        self.with(|s| f(s.pulls.get_mut(&(repo.to_string(), number)).unwrap()));
    }

    /// `login`'s role on `repo`: read, triage, write, maintain or admin.
    pub fn permission(&self, repo: &str, login: &str, permission: &str) {
        self.with(|s| {
            s.permissions
                .insert((repo.into(), login.into()), permission.into())
        });
    }

    /// What GitHub holds by the time it delivers webhook `name` with `event`: a new comment on a
    /// pull request is in its conversation (it counts in the pull request's `comments`).
    pub fn delivered(&self, name: &str, event: &Value) {
        if name == "issue_comment"
            && event["action"] == "created"
            && event["issue"]["pull_request"].is_object()
        {
            let (Some(repo), Some(number), Some(who), Some(body)) = (
                event["repository"]["full_name"].as_str(),
                event["issue"]["number"].as_u64(),
                event["comment"]["user"]["login"].as_str(),
                event["comment"]["body"].as_str(),
            ) else {
                return;
            };
            self.with(|s| {
                let id = s.id();
                let c = shapes::comment(repo, number, id, who, body);
                s.comments.entry((repo.into(), number)).or_default().push(c);
                s.delivered.insert(id);
            });
        }
    }

    /// A comment someone else wrote.
    pub fn add_comment(&self, repo: &str, number: u64, login: &str, body: &str) {
        self.with(|s| {
            let id = s.id();
            let c = shapes::comment(repo, number, id, login, body);
            s.comments.entry((repo.into(), number)).or_default().push(c);
        });
    }

    /// The comments of pull request `number`, but for the commands delivered as webhooks
    /// ([`FakeGitHub::delivered`]): what the bot and the test wrote.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<Value> {
        self.with(|s| {
            s.comments
                .get(&(repo.to_string(), number))
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| !c["id"].as_u64().is_some_and(|id| s.delivered.contains(&id)))
                .collect()
        })
    }

    /// The statuses set on `repo`, oldest first: (sha, state, description).
    pub fn statuses(&self, repo: &str) -> Vec<(String, String, String)> {
        self.with(|s| {
            s.statuses
                .iter()
                .filter(|(r, _, _)| r == repo)
                .map(|(_, sha, v)| {
                    let text = |k: &str| v[k].as_str().unwrap_or("").to_string();
                    (sha.clone(), text("state"), text("description"))
                })
                .collect()
        })
    }

    /// A commit status someone else (Flux's notification Provider) posts.
    pub fn post_status(
        &self,
        repo: &str,
        sha: &str,
        context: &str,
        state: &str,
        description: &str,
    ) {
        self.post_status_as("flux-provider", repo, sha, context, state, description);
    }

    /// A commit status `creator` posts.
    pub fn post_status_as(
        &self,
        creator: &str,
        repo: &str,
        sha: &str,
        context: &str,
        state: &str,
        description: &str,
    ) {
        self.with(|s| {
            let id = s.id();
            let v = shapes::status(id, context, state, Some(description), None, creator, &now());
            s.statuses.push((repo.into(), sha.into(), v));
        });
    }

    pub async fn requests(&self) -> Vec<String> {
        super::fake_forges::requests(&self.server).await
    }

    /// What departed from GitHub's contract so far (the test fails with them at the end).
    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }

    /// Play GitHub for the GitHub App `id` named `slug`, whose JWTs `public_pem` checks: from now
    /// on only App JWTs and live installation tokens are taken.
    pub fn app(&self, id: u64, slug: &str, public_pem: &[u8]) {
        self.with(|s| s.app = Some(apps::AppState::new(id, slug, public_pem)));
    }

    /// Installation `id` of the App on `account`, holding `repositories` with `permissions`.
    pub fn install(&self, id: u64, account: &str, repositories: &[&str], permissions: Value) {
        self.with(|s| {
            let app = s.app.as_mut().expect("the fake plays no App");
            app.installations.push(apps::Installation {
                id,
                account: account.into(),
                repositories: repositories.iter().map(|r| r.to_string()).collect(),
                permissions,
            })
        });
    }

    /// New installation tokens live this long.
    pub fn token_ttl(&self, ttl: std::time::Duration) {
        self.with(|s| s.app.as_mut().expect("the fake plays no App").token_ttl = ttl);
    }

    /// The installation tokens handed out so far: (installation, scope).
    pub fn minted(&self) -> Vec<(u64, Option<Vec<String>>)> {
        self.with(|s| {
            s.app
                .as_ref()
                .map(|a| {
                    a.tokens
                        .iter()
                        .map(|t| (t.installation, t.scope.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Whether `token` is live and reaches `repo` (`owner/name`), as Git over HTTPS asks.
    pub fn token_reaches(&self, token: &str, repo: &str) -> bool {
        self.with(|s| apps::token_reaches(s, token, repo))
    }

    /// The requests that counted against a rate limit so far: (who, `METHOD /path`).
    pub fn billed(&self) -> Vec<(String, String)> {
        self.with(|s| s.billed.clone())
    }

    /// The next `method path` is answered with a secondary rate limit: 429, `retry-after: secs`.
    pub fn throttle_once(&self, method: &str, path: &str, secs: u64) {
        self.with(|s| s.throttle = Some((method.into(), path.into(), secs)));
    }

    /// The requests answered `304 Not Modified`: (who, `METHOD /path`).
    pub fn not_modified(&self) -> Vec<(String, String)> {
        self.with(|s| s.not_modified.clone())
    }

    /// [`FakeGitHub::billed`], starting the count again.
    pub fn take_billed(&self) -> Vec<(String, String)> {
        self.with(|s| std::mem::take(&mut s.billed))
    }

    /// Take the departures recorded so far, for a test that provokes one on purpose.
    pub fn take_violations(&self) -> Vec<String> {
        self.with(|s| std::mem::take(&mut s.violations))
    }
}
