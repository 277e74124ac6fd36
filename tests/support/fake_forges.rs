//! A stateful fake GitLab API on 127.0.0.1 (wiremock), answering like the real one for what
//! flux-ephemeral calls: merge requests, members, notes (created and edited), commit statuses,
//! pipelines, environments, deployments, the token's user. Every request is recorded. The fake
//! GitHub is `super::github`.

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

// GitHub: `super::github` (held to GitHub's published contract), re-exported here.
#[allow(unused_imports)]
pub use super::github::{github_comment_handled, github_pull, FakeGitHub};

// ---------------------------------------------------------------------------------------------
// GitLab

#[derive(Default)]
struct GitLabState {
    /// Departures from the endpoints and parameters GitLab documents.
    violations: Vec<String>,
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
    _verdict: Arc<GitLabVerdict>,
}

/// Fails the test when the last handle on the fake goes, if a request departed from what GitLab
/// documents.
struct GitLabVerdict(Arc<Mutex<GitLabState>>);

impl Drop for GitLabVerdict {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let v = std::mem::take(&mut self.0.lock().unwrap().violations);
        if !v.is_empty() {
            panic!(
                "the fake GitLab saw requests GitLab does not document:\n- {}",
                v.join("\n- ")
            );
        }
    }
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
        FakeGitLab {
            server,
            _verdict: Arc::new(GitLabVerdict(state.clone())),
            state,
        }
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

    /// Take the departures recorded so far, for a test that provokes one on purpose.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().violations)
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
        // Held to the endpoints and parameters GitLab documents (tests/contracts/gitlab/).
        let mut names: Vec<String> = req.url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(o)) => names.extend(o.keys().cloned()),
            _ => names.extend(form.keys().cloned()),
        }
        if let Err(v) = super::contract::gitlab_request(req.method.as_str(), rest, &names) {
            s.violations.push(v);
            return ResponseTemplate::new(400).set_body_json(json!({"error": "not documented"}));
        }
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
