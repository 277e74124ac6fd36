//! Stateful fake GitHub and GitLab APIs on 127.0.0.1 (wiremock), answering like the real ones for
//! what flux-ephemeral calls: pull/merge requests, permissions, comments/notes (created and
//! edited), commit statuses, open lists, the token's user. Every request is recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}))
}

fn ok(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

/// The recorded requests: `METHOD /path`.
pub async fn requests(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

/// The time as the forges write it.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

// ---------------------------------------------------------------------------------------------
// GitHub

#[derive(Default)]
struct GitHubState {
    bot: String,
    /// (repo, number) → pull request JSON.
    pulls: BTreeMap<(String, u64), Value>,
    /// (repo, login) → permission.
    permissions: BTreeMap<(String, String), String>,
    /// (repo, number) → comments.
    comments: BTreeMap<(String, u64), Vec<Value>>,
    /// (repo, sha, status JSON).
    statuses: Vec<(String, String, Value)>,
    /// (repo, number) → the paths the pull request changes.
    files: BTreeMap<(String, u64), Vec<String>>,
    /// (repo, deployment JSON with its `statuses`), oldest first.
    deployments: Vec<(String, Value)>,
    /// (repo, sha) → check runs.
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
    /// What `GET /repos/{o}/{r}` says the token may do (`permissions.push`); `None`: nothing,
    /// as for an app installation token.
    token_push: Option<bool>,
    base: String,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub server: Arc<MockServer>,
    state: Arc<Mutex<GitHubState>>,
}

/// A pull request as GitHub's API returns it.
pub fn github_pull(repo: &str, number: u64, branch: &str, sha: &str, head_repo: &str) -> Value {
    let r = |full: &str| {
        json!({"id": 1, "name": full.split('/').nth(1).unwrap_or(full), "full_name": full,
               "clone_url": format!("https://github.com/{full}.git"), "private": false})
    };
    json!({
        "url": format!("https://api.github.com/repos/{repo}/pulls/{number}"), "id": 1000 + number,
        "number": number, "state": "open", "locked": false, "title": format!("Change {number}"),
        "user": {"login": "author", "id": 7, "type": "User"}, "merged": false,
        "head": {"ref": branch, "sha": sha, "label": format!("x:{branch}"), "repo": r(head_repo)},
        "base": {"ref": "main", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "label": "x:main", "repo": r(repo)},
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "draft": false
    })
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
        let state = Arc::new(Mutex::new(GitHubState {
            bot: bot.into(),
            next_id: 1000,
            page_size: 100,
            token_push: Some(true),
            base: server.uri(),
            ..GitHubState::default()
        }));
        Mock::given(wiremock::matchers::any())
            .respond_with(GitHubResponder(state.clone()))
            .mount(&server)
            .await;
        FakeGitHub { server, state }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Lists come in pages of `n` items, linked with `Link: <…>; rel="next"`.
    pub fn page_size(&self, n: usize) {
        self.state.lock().unwrap().page_size = n;
    }

    /// Answer `status` to `method path` from now on.
    pub fn fail(&self, method: &str, path: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert((method.into(), path.into()), status);
    }

    pub fn pull(&self, repo: &str, pr: Value) {
        let n = pr["number"].as_u64().unwrap();
        self.state
            .lock()
            .unwrap()
            .pulls
            .insert((repo.into(), n), pr);
    }

    /// The files pull request `number` changes (listed in pages of the page size).
    pub fn files(&self, repo: &str, number: u64, files: &[&str]) {
        self.state.lock().unwrap().files.insert(
            (repo.into(), number),
            files.iter().map(|f| f.to_string()).collect(),
        );
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
        let mut s = self.state.lock().unwrap();
        let runs = s.check_runs.entry((repo.into(), sha.into())).or_default();
        runs.retain(|r| r["name"] != name);
        runs.push(
            json!({"name": name, "status": status, "conclusion": conclusion, "head_sha": sha}),
        );
    }

    /// The deployments of `repo`, oldest first, each with its `statuses` in order.
    pub fn deployments(&self, repo: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .deployments
            .iter()
            .filter(|(r, _)| r == repo)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Answer 500 for page `n` of every files listing from now on.
    pub fn fail_files_page(&self, n: usize) {
        self.state.lock().unwrap().failing_files_page = Some(n);
    }

    /// What the repository endpoint says the token may push (`None`: says nothing).
    pub fn token_push(&self, push: Option<bool>) {
        self.state.lock().unwrap().token_push = push;
    }

    /// Close pull request `number` of `repo` right after the first page of the next listing.
    pub fn close_after_first_page(&self, repo: &str, number: u64) {
        self.state.lock().unwrap().close_after_first_page = Some((repo.into(), number));
    }

    /// Change a pull request, e.g. close it or move its head.
    pub fn edit_pull(&self, repo: &str, number: u64, f: impl FnOnce(&mut Value)) {
        let mut s = self.state.lock().unwrap();
        f(s.pulls.get_mut(&(repo.to_string(), number)).unwrap());
    }

    pub fn permission(&self, repo: &str, login: &str, permission: &str) {
        self.state
            .lock()
            .unwrap()
            .permissions
            .insert((repo.into(), login.into()), permission.into());
    }

    /// A comment someone else wrote.
    pub fn add_comment(&self, repo: &str, number: u64, login: &str, body: &str) {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id;
        s.comments
            .entry((repo.into(), number))
            .or_default()
            .push(json!({"id": id, "body": body, "user": {"login": login, "type": "User"}}));
    }

    pub fn comments(&self, repo: &str, number: u64) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .comments
            .get(&(repo.to_string(), number))
            .cloned()
            .unwrap_or_default()
    }

    /// The statuses set on `repo`: (sha, state, description).
    pub fn statuses(&self, repo: &str) -> Vec<(String, String, String)> {
        self.state
            .lock()
            .unwrap()
            .statuses
            .iter()
            .filter(|(r, _, _)| r == repo)
            .map(|(_, sha, v)| {
                (
                    sha.clone(),
                    v["state"].as_str().unwrap_or("").into(),
                    v["description"].as_str().unwrap_or("").into(),
                )
            })
            .collect()
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
        self.state.lock().unwrap().statuses.push((
            repo.into(),
            sha.into(),
            json!({"state": state, "context": context, "description": description, "created_at": now(),
                   "creator": {"login": "flux-provider", "type": "User"}}),
        ));
    }

    pub async fn requests(&self) -> Vec<String> {
        requests(&self.server).await
    }
}

struct GitHubResponder(Arc<Mutex<GitHubState>>);

/// Page `page` of `all` (GitHub's `page` and `per_page`), linked to the next page with a `Link`
/// header when there is one.
fn github_page(
    all: Vec<Value>,
    page: usize,
    per_page: usize,
    next_url: impl FnOnce(usize) -> String,
) -> ResponseTemplate {
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut answer = ok(Value::Array(items));
    if page * per_page < total {
        let next = next_url(page + 1);
        answer = answer.insert_header("Link", format!("<{next}>; rel=\"next\"").as_str());
    }
    answer
}

impl Respond for GitHubResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        if let Some(code) = s
            .failures
            .get(&(req.method.to_string(), req.url.path().to_string()))
        {
            return ResponseTemplate::new(*code).set_body_json(json!({"message": "Server Error"}));
        }
        let mut path: Vec<&str> = req.url.path().trim_matches('/').split('/').collect();
        // GitHub Enterprise's API lives under /api/v3 (Flux's Provider for a host other than
        // github.com calls it there).
        if path.starts_with(&["api", "v3"]) {
            path.drain(..2);
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let query = |k: &str| {
            req.url
                .query_pairs()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.into_owned())
        };
        match (req.method.as_str(), path.as_slice()) {
            ("GET", ["user"]) => ok(json!({"login": s.bot, "id": 99, "type": "User"})),
            ("GET", ["rate_limit"]) => {
                ok(json!({"resources": {"core": {"limit": 5000, "remaining": 4999}}}))
            }
            ("GET", ["repos", o, r, "collaborators", login, "permission"]) => {
                match s.permissions.get(&(format!("{o}/{r}"), login.to_string())) {
                    Some(p) => {
                        ok(json!({"permission": p, "role_name": p, "user": {"login": login}}))
                    }
                    None => not_found(),
                }
            }
            ("GET", ["repos", o, r]) => {
                let mut repo = json!({"id": 1, "name": r, "full_name": format!("{o}/{r}")});
                if let Some(push) = s.token_push {
                    repo["permissions"] = json!({"admin": false, "push": push, "pull": true});
                }
                ok(repo)
            }
            ("GET", ["repos", o, r, "pulls"]) => {
                let repo = format!("{o}/{r}");
                let want = query("state").unwrap_or_else(|| "open".into());
                let list: Vec<Value> = s
                    .pulls
                    .iter()
                    .filter(|((rp, _), pr)| *rp == repo && (want == "all" || pr["state"] == want))
                    .map(|(_, pr)| pr.clone())
                    .collect();
                let per_page = query("per_page")
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(30)
                    .min(s.page_size)
                    .max(1);
                let page = query("page")
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(1);
                let answer = github_page(list, page, per_page, |next| {
                    format!(
                        "{}/repos/{o}/{r}/pulls?state={want}&per_page={per_page}&page={next}",
                        s.base
                    )
                });
                // The listing shifts under the reader after its first page.
                if page == 1 {
                    if let Some(key) = s.close_after_first_page.take() {
                        if let Some(pr) = s.pulls.get_mut(&key) {
                            pr["state"] = json!("closed");
                        }
                    }
                }
                answer
            }
            ("GET", ["repos", o, r, "commits", sha, "check-runs"]) => {
                let runs = s
                    .check_runs
                    .get(&(format!("{o}/{r}"), sha.to_string()))
                    .cloned()
                    .unwrap_or_default();
                ok(json!({"total_count": runs.len(), "check_runs": runs}))
            }
            ("POST", ["repos", o, r, "deployments"]) => {
                s.next_id += 1;
                let mut d = body.clone();
                d["id"] = json!(s.next_id);
                d["statuses"] = json!([]);
                s.deployments.push((format!("{o}/{r}"), d.clone()));
                ResponseTemplate::new(201).set_body_json(d)
            }
            ("GET", ["repos", o, r, "deployments"]) => {
                let repo = format!("{o}/{r}");
                let env = query("environment");
                let list: Vec<Value> = s
                    .deployments
                    .iter()
                    .rev()
                    .filter(|(rp, d)| {
                        *rp == repo && env.as_deref().is_none_or(|e| d["environment"] == e)
                    })
                    .map(|(_, d)| d.clone())
                    .collect();
                ok(Value::Array(list))
            }
            ("POST", ["repos", o, r, "deployments", id, "statuses"]) => {
                let repo = format!("{o}/{r}");
                let id: u64 = id.parse().unwrap_or(0);
                let Some(env) = s
                    .deployments
                    .iter()
                    .find(|(rp, d)| *rp == repo && d["id"] == id)
                    .map(|(_, d)| d["environment"].clone())
                else {
                    return not_found();
                };
                // As GitHub does: a success with auto_inactive retires the environment's others.
                if body["state"] == "success" && body["auto_inactive"] != false {
                    for (rp, d) in s.deployments.iter_mut() {
                        let last = d["statuses"]
                            .as_array()
                            .and_then(|a| a.last())
                            .map(|l| l["state"].clone());
                        if *rp == repo
                            && d["environment"] == env
                            && d["id"] != id
                            && last != Some(json!("inactive"))
                        {
                            d["statuses"]
                                .as_array_mut()
                                .unwrap()
                                .push(json!({"state": "inactive"}));
                        }
                    }
                }
                for (rp, d) in s.deployments.iter_mut() {
                    if *rp == repo && d["id"] == id {
                        d["statuses"].as_array_mut().unwrap().push(body.clone());
                    }
                }
                ResponseTemplate::new(201).set_body_json(json!({"id": 1, "state": body["state"]}))
            }
            ("GET", ["repos", o, r, "pulls", n, "files"]) => {
                let key = (format!("{o}/{r}"), n.parse().unwrap_or(0));
                let all = s.files.get(&key).cloned().unwrap_or_default();
                let per_page = query("per_page")
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(30)
                    .min(s.page_size)
                    .max(1);
                let page = query("page")
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(1);
                if s.failing_files_page == Some(page) {
                    return ResponseTemplate::new(500)
                        .set_body_json(json!({"message": "Server Error"}));
                }
                let files = all
                    .iter()
                    .map(|f| json!({"filename": f, "status": "modified"}))
                    .collect();
                let answer = github_page(files, page, per_page, |next| {
                    format!(
                        "{}/repos/{o}/{r}/pulls/{n}/files?per_page={per_page}&page={next}",
                        s.base
                    )
                });
                answer
            }
            ("GET", ["repos", o, r, "pulls", n]) => {
                let key = (format!("{o}/{r}"), n.parse().unwrap_or(0));
                s.pulls.get(&key).cloned().map_or_else(not_found, ok)
            }
            ("GET", ["repos", o, r, "issues", n, "comments"]) => {
                let key = (format!("{o}/{r}"), n.parse().unwrap_or(0));
                ok(Value::Array(
                    s.comments.get(&key).cloned().unwrap_or_default(),
                ))
            }
            ("POST", ["repos", o, r, "issues", n, "comments"]) => {
                s.next_id += 1;
                let c = json!({"id": s.next_id, "body": body["body"], "user": {"login": s.bot, "type": "User"},
                    "html_url": format!("https://github.com/{o}/{r}/pull/{n}#issuecomment-{}", s.next_id)});
                let key = (format!("{o}/{r}"), n.parse().unwrap_or(0));
                s.comments.entry(key).or_default().push(c.clone());
                ResponseTemplate::new(201).set_body_json(c)
            }
            ("PATCH", ["repos", o, r, "issues", "comments", id]) => {
                let repo = format!("{o}/{r}");
                let id: u64 = id.parse().unwrap_or(0);
                for ((rp, _), list) in s.comments.iter_mut() {
                    if *rp != repo {
                        continue;
                    }
                    if let Some(c) = list.iter_mut().find(|c| c["id"] == id) {
                        c["body"] = body["body"].clone();
                        return ok(c.clone());
                    }
                }
                not_found()
            }
            ("GET", ["repos", o, r, "commits", sha, "status"]) => {
                // The combined status: the latest status of each context.
                let repo = format!("{o}/{r}");
                let mut latest: BTreeMap<String, Value> = BTreeMap::new();
                for (_, _, v) in s
                    .statuses
                    .iter()
                    .filter(|(rp, sh, _)| *rp == repo && sh == sha)
                {
                    let ctx = v["context"].as_str().unwrap_or("default").to_string();
                    latest.insert(ctx, v.clone());
                }
                let statuses: Vec<Value> = latest.into_values().collect();
                ok(
                    json!({"state": "pending", "sha": sha, "total_count": statuses.len(), "statuses": statuses}),
                )
            }
            ("GET", ["repos", o, r, "commits", sha, "statuses"]) => {
                // Every status of the commit, newest first.
                let repo = format!("{o}/{r}");
                let list: Vec<Value> = s
                    .statuses
                    .iter()
                    .rev()
                    .filter(|(rp, sh, _)| *rp == repo && sh == sha)
                    .map(|(_, _, v)| v.clone())
                    .collect();
                ok(Value::Array(list))
            }
            ("POST", ["repos", o, r, "statuses", sha]) => {
                let mut status = body.clone();
                status["created_at"] = json!(now());
                status["creator"] = json!({"login": s.bot, "type": "User"});
                s.statuses
                    .push((format!("{o}/{r}"), sha.to_string(), status));
                ResponseTemplate::new(201).set_body_json(json!({"id": 1, "state": body["state"]}))
            }
            _ => not_found(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GitLab

#[derive(Default)]
struct GitLabState {
    /// project id → path.
    projects: BTreeMap<u64, String>,
    /// (project, iid) → merge request JSON.
    merge_requests: BTreeMap<(u64, u64), Value>,
    /// (project, user id) → access level.
    members: BTreeMap<(u64, u64), u64>,
    /// (project, iid) → notes.
    notes: BTreeMap<(u64, u64), Vec<Value>>,
    /// project → environments.
    environments: BTreeMap<u64, Vec<Value>>,
    statuses: Vec<(u64, String, String)>,
    /// The bot's statuses' descriptions, in the order of `statuses`.
    descriptions: Vec<String>,
    /// (project, sha) → the newest pipeline's status.
    pipelines: BTreeMap<(u64, String), String>,
    /// (project, iid) → the paths the merge request changes.
    diffs: BTreeMap<(u64, u64), Vec<String>>,
    /// (project, deployment id) → deployment JSON.
    deployments: BTreeMap<(u64, u64), Value>,
    /// Statuses posted by others (Flux): (project, sha, status JSON).
    others_statuses: Vec<(u64, String, Value)>,
    /// When set, every request must carry this PRIVATE-TOKEN (else 401, as GitLab answers).
    token: Option<String>,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeGitLab {
    pub server: Arc<MockServer>,
    state: Arc<Mutex<GitLabState>>,
}

/// The bot's user id on the fake GitLab.
pub const GITLAB_BOT_ID: u64 = 99;

/// A merge request as GitLab's API returns it.
pub fn gitlab_merge_request(project: u64, iid: u64, branch: &str, sha: &str) -> Value {
    json!({
        "id": 10_000 + iid, "iid": iid, "project_id": project, "title": format!("Change {iid}"),
        "state": "opened", "source_branch": branch, "target_branch": "main", "sha": sha,
        "source_project_id": project, "target_project_id": project,
        "author": {"id": 1, "username": "root"}, "web_url": format!("https://gitlab.example.com/-/merge_requests/{iid}")
    })
}

impl FakeGitLab {
    pub async fn start() -> FakeGitLab {
        let server = Arc::new(MockServer::start().await);
        let state = Arc::new(Mutex::new(GitLabState {
            next_id: 500,
            ..GitLabState::default()
        }));
        Mock::given(wiremock::matchers::any())
            .respond_with(GitLabResponder(state.clone()))
            .mount(&server)
            .await;
        FakeGitLab { server, state }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Answer 401 to any request without this PRIVATE-TOKEN.
    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.into());
    }

    pub fn deployment(&self, project: u64, id: u64, deployment: Value) {
        self.state
            .lock()
            .unwrap()
            .deployments
            .insert((project, id), deployment);
    }

    pub fn project(&self, id: u64, path: &str) {
        self.state.lock().unwrap().projects.insert(id, path.into());
    }

    pub fn merge_request(&self, mr: Value) {
        let key = (
            mr["project_id"].as_u64().unwrap(),
            mr["iid"].as_u64().unwrap(),
        );
        self.state.lock().unwrap().merge_requests.insert(key, mr);
    }

    pub fn edit_merge_request(&self, project: u64, iid: u64, f: impl FnOnce(&mut Value)) {
        let mut s = self.state.lock().unwrap();
        f(s.merge_requests.get_mut(&(project, iid)).unwrap());
    }

    pub fn member(&self, project: u64, user: u64, access_level: u64) {
        self.state
            .lock()
            .unwrap()
            .members
            .insert((project, user), access_level);
    }

    /// A note someone else wrote.
    pub fn add_note(&self, project: u64, iid: u64, author: u64, body: &str) {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id;
        s.notes.entry((project, iid)).or_default().push(
            json!({"id": id, "body": body, "system": false, "author": {"id": author, "username": format!("user{author}")}}),
        );
    }

    pub fn notes(&self, project: u64, iid: u64) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .notes
            .get(&(project, iid))
            .cloned()
            .unwrap_or_default()
    }

    pub fn environment(&self, project: u64, env: Value) {
        self.state
            .lock()
            .unwrap()
            .environments
            .entry(project)
            .or_default()
            .push(env);
    }

    /// The files merge request `iid` of `project` changes.
    pub fn diffs(&self, project: u64, iid: u64, files: &[&str]) {
        self.state.lock().unwrap().diffs.insert(
            (project, iid),
            files.iter().map(|f| f.to_string()).collect(),
        );
    }

    /// The newest pipeline of `sha` in `project` has `status` (running, success, failed, …).
    pub fn pipeline(&self, project: u64, sha: &str, status: &str) {
        self.state
            .lock()
            .unwrap()
            .pipelines
            .insert((project, sha.into()), status.into());
    }

    /// The environments of `project`, as created or edited.
    pub fn environments(&self, project: u64) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .environments
            .get(&project)
            .cloned()
            .unwrap_or_default()
    }

    /// The deployments of `project` (created through the API or set up), by id.
    pub fn deployments(&self, project: u64) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .deployments
            .iter()
            .filter(|((p, _), _)| *p == project)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// A commit status someone else (Flux's notification Provider) posts.
    pub fn post_status(
        &self,
        project: u64,
        sha: &str,
        name: &str,
        status: &str,
        description: &str,
    ) {
        self.state.lock().unwrap().others_statuses.push((
            project,
            sha.into(),
            json!({"name": name, "status": status, "description": description, "created_at": now()}),
        ));
    }

    pub fn statuses(&self, project: u64) -> Vec<(String, String)> {
        self.state
            .lock()
            .unwrap()
            .statuses
            .iter()
            .filter(|(p, _, _)| *p == project)
            .map(|(_, sha, st)| (sha.clone(), st.clone()))
            .collect()
    }

    pub async fn requests(&self) -> Vec<String> {
        requests(&self.server).await
    }
}

struct GitLabResponder(Arc<Mutex<GitLabState>>);

impl Respond for GitLabResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        if let Some(t) = &s.token {
            let sent = req
                .headers
                .get("PRIVATE-TOKEN")
                .and_then(|v| v.to_str().ok());
            if sent != Some(t.as_str()) {
                return ResponseTemplate::new(401)
                    .set_body_json(json!({"message": "401 Unauthorized"}));
            }
        }
        let raw = req.url.path().trim_matches('/').to_string();
        let Some(rest) = raw.strip_prefix("api/v4/") else {
            return not_found();
        };
        let path: Vec<&str> = rest.split('/').collect();
        // The gitlab crate sends form-encoded bodies.
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        // JSON (our own endpoints) or a form (the gitlab crate's).
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_else(|_| json!(form));
        let query = |k: &str| {
            req.url
                .query_pairs()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.into_owned())
        };
        let project = |p: &str| -> Option<u64> {
            p.parse().ok().or_else(|| {
                let decoded = p.replace("%2F", "/");
                s.projects
                    .iter()
                    .find(|(_, path)| **path == decoded)
                    .map(|(id, _)| *id)
            })
        };
        match (req.method.as_str(), path.as_slice()) {
            ("GET", ["user"]) => {
                ok(json!({"id": GITLAB_BOT_ID, "username": "flux-bot", "state": "active"}))
            }
            ("GET", ["projects", p]) => match project(p) {
                Some(id) => ok(json!({"id": id, "path_with_namespace": s.projects.get(&id),
                    "http_url_to_repo": format!("https://gitlab.example.com/{}.git", s.projects.get(&id).cloned().unwrap_or_default())})),
                None => not_found(),
            },
            ("GET", ["projects", p, "members", "all", user]) => {
                let (Some(p), Ok(u)) = (project(p), user.parse::<u64>()) else {
                    return not_found();
                };
                match s.members.get(&(p, u)) {
                    Some(level) => ok(
                        json!({"id": u, "username": format!("user{u}"), "state": "active", "access_level": level}),
                    ),
                    None => not_found(),
                }
            }
            ("GET", ["projects", p, "merge_requests"]) => {
                let Some(p) = project(p) else {
                    return not_found();
                };
                let want = query("state");
                let list: Vec<Value> = s
                    .merge_requests
                    .iter()
                    .filter(|((pid, _), mr)| {
                        *pid == p && want.as_deref().is_none_or(|w| mr["state"] == w)
                    })
                    .map(|(_, mr)| mr.clone())
                    .collect();
                ok(Value::Array(list))
            }
            ("GET", ["projects", p, "merge_requests", iid]) => {
                let (Some(p), Ok(i)) = (project(p), iid.parse::<u64>()) else {
                    return not_found();
                };
                s.merge_requests
                    .get(&(p, i))
                    .cloned()
                    .map_or_else(not_found, ok)
            }
            ("GET", ["projects", p, "repository", "commits", sha, "statuses"]) => {
                let Some(p) = project(p) else {
                    return not_found();
                };
                let mut list: Vec<Value> = s
                    .statuses
                    .iter()
                    .zip(s.descriptions.iter())
                    .filter(|((pp, sh, _), _)| *pp == p && sh == sha)
                    .map(|((_, _, st), d)| json!({"name": "flux-ephemeral", "status": st, "description": d,
                        "author": {"id": GITLAB_BOT_ID, "username": "flux-bot"}, "created_at": now()}))
                    .collect();
                list.extend(
                    s.others_statuses
                        .iter()
                        .filter(|(pp, sh, _)| *pp == p && sh == sha)
                        .map(|(_, _, v)| v.clone()),
                );
                ok(Value::Array(list))
            }
            ("GET", ["projects", p, "merge_requests", iid, "diffs"]) => {
                let (Some(p), Ok(iid)) = (project(p), iid.parse::<u64>()) else {
                    return not_found();
                };
                let all = s.diffs.get(&(p, iid)).cloned().unwrap_or_default();
                let per_page = query("per_page")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(20)
                    .max(1);
                let page = query("page")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(1);
                let items: Vec<Value> = all
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(|f| json!({"old_path": f, "new_path": f}))
                    .collect();
                let mut answer = ok(Value::Array(items));
                if page * per_page < all.len() {
                    answer = answer.insert_header("x-next-page", (page + 1).to_string().as_str());
                }
                answer
            }
            ("GET", ["projects", p, "pipelines"]) => {
                let Some(p) = project(p) else {
                    return not_found();
                };
                let sha = query("sha").unwrap_or_default();
                let list: Vec<Value> = s
                    .pipelines
                    .get(&(p, sha.clone()))
                    .map(|st| vec![json!({"id": 1, "sha": sha, "status": st})])
                    .unwrap_or_default();
                ok(Value::Array(list))
            }
            ("GET", ["projects", p, "deployments", id]) => {
                let (Some(p), Ok(id)) = (project(p), id.parse::<u64>()) else {
                    return not_found();
                };
                s.deployments
                    .get(&(p, id))
                    .cloned()
                    .map_or_else(not_found, ok)
            }
            ("GET", ["projects", p, "environments"]) => {
                let Some(p) = project(p) else {
                    return not_found();
                };
                let want = query("states");
                let name = query("name");
                let list: Vec<Value> = s
                    .environments
                    .get(&p)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| want.as_deref().is_none_or(|w| e["state"] == w))
                    .filter(|e| name.as_deref().is_none_or(|n| e["name"] == n))
                    .collect();
                ok(Value::Array(list))
            }
            ("POST", ["projects", p, "environments"]) => {
                let Some(p) = project(p) else {
                    return not_found();
                };
                s.next_id += 1;
                let mut e = body.clone();
                e["id"] = json!(s.next_id);
                e["state"] = json!("available");
                s.environments.entry(p).or_default().push(e.clone());
                ResponseTemplate::new(201).set_body_json(e)
            }
            ("PUT", ["projects", p, "environments", id]) => {
                let (Some(p), Ok(id)) = (project(p), id.parse::<u64>()) else {
                    return not_found();
                };
                match s
                    .environments
                    .get_mut(&p)
                    .and_then(|l| l.iter_mut().find(|e| e["id"] == id))
                {
                    Some(e) => {
                        for (k, v) in body.as_object().cloned().unwrap_or_default() {
                            e[k.as_str()] = v;
                        }
                        e["state"] = json!("available");
                        ok(e.clone())
                    }
                    None => not_found(),
                }
            }
            ("POST", ["projects", p, "deployments"]) => {
                let Some(p) = project(p) else {
                    return not_found();
                };
                s.next_id += 1;
                let id = s.next_id;
                let mut d = body.clone();
                d["id"] = json!(id);
                s.deployments.insert((p, id), d.clone());
                ResponseTemplate::new(201).set_body_json(d)
            }
            ("PUT", ["projects", p, "deployments", id]) => {
                let (Some(p), Ok(id)) = (project(p), id.parse::<u64>()) else {
                    return not_found();
                };
                match s.deployments.get_mut(&(p, id)) {
                    Some(d) => {
                        d["status"] = body["status"].clone();
                        ok(d.clone())
                    }
                    None => not_found(),
                }
            }
            ("POST", ["projects", p, "environments", id, "stop"]) => {
                let (Some(p), Ok(id)) = (project(p), id.parse::<u64>()) else {
                    return not_found();
                };
                match s
                    .environments
                    .get_mut(&p)
                    .and_then(|l| l.iter_mut().find(|e| e["id"] == id))
                {
                    Some(e) => {
                        e["state"] = json!("stopping");
                        ok(e.clone())
                    }
                    None => not_found(),
                }
            }
            ("DELETE", ["projects", p, "environments", "review_apps"]) => match project(p) {
                Some(_) => ok(json!({"scheduled_entries": [], "unprocessable_entries": []})),
                None => not_found(),
            },
            ("GET", ["projects", p, "merge_requests", iid, "notes"]) => {
                let (Some(p), Ok(i)) = (project(p), iid.parse::<u64>()) else {
                    return not_found();
                };
                ok(Value::Array(
                    s.notes.get(&(p, i)).cloned().unwrap_or_default(),
                ))
            }
            ("POST", ["projects", p, "merge_requests", iid, "notes"]) => {
                let (Some(p), Ok(i)) = (project(p), iid.parse::<u64>()) else {
                    return not_found();
                };
                s.next_id += 1;
                let n = json!({"id": s.next_id, "body": form.get("body"), "system": false,
                    "author": {"id": GITLAB_BOT_ID, "username": "flux-bot"}});
                s.notes.entry((p, i)).or_default().push(n.clone());
                ResponseTemplate::new(201).set_body_json(n)
            }
            ("PUT", ["projects", p, "merge_requests", iid, "notes", id]) => {
                let (Some(p), Ok(i), Ok(id)) = (project(p), iid.parse::<u64>(), id.parse::<u64>())
                else {
                    return not_found();
                };
                let body = form.get("body").cloned();
                match s
                    .notes
                    .get_mut(&(p, i))
                    .and_then(|l| l.iter_mut().find(|n| n["id"] == id))
                {
                    Some(n) => {
                        n["body"] = json!(body);
                        ok(n.clone())
                    }
                    None => not_found(),
                }
            }
            ("POST", ["projects", p, "statuses", sha]) => {
                let Some(p) = project(p) else {
                    return not_found();
                };
                let state = form.get("state").cloned().unwrap_or_default();
                s.statuses.push((p, sha.to_string(), state.clone()));
                s.descriptions
                    .push(form.get("description").cloned().unwrap_or_default());
                ResponseTemplate::new(201)
                    .set_body_json(json!({"id": 1, "status": state, "name": "flux-ephemeral"}))
            }
            _ => not_found(),
        }
    }
}
