//! A stateful fake GitLab API on 127.0.0.1 (wiremock), answering like the real one for what
//! flux-ephemeral calls, held to the endpoints and parameters GitLab documents
//! (tests/contracts/gitlab/): a request to anything else fails the test. Every request is
//! recorded. One file per resource answers its endpoints.

mod deployments;
mod environments;
mod merge_requests;
mod projects;
mod statuses;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not Found"}))
}

fn ok(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

/// The time as GitLab writes it.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// One request, as the resource handlers see it.
pub(super) struct Req {
    method: String,
    query: Vec<(String, String)>,
    /// The gitlab crate sends form-encoded bodies.
    form: BTreeMap<String, String>,
    /// JSON (our own endpoints) or the form as JSON.
    body: Value,
}

impl Req {
    fn query(&self, k: &str) -> Option<String> {
        self.query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    }
}

impl State {
    /// A project by id or (URL-encoded) path.
    fn project(&self, p: &str) -> Option<u64> {
        p.parse().ok().or_else(|| {
            let decoded = p.replace("%2F", "/");
            self.projects
                .iter()
                .find(|(_, path)| **path == decoded)
                .map(|(id, _)| *id)
        })
    }
}

#[derive(Default)]
pub(super) struct State {
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
    state: Arc<Mutex<State>>,
    _verdict: Arc<GitLabVerdict>,
}

/// Fails the test when the last handle on the fake goes, if a request departed from what GitLab
/// documents.
struct GitLabVerdict(Arc<Mutex<State>>);

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
        let state = Arc::new(Mutex::new(State {
            next_id: 500,
            ..State::default()
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
        super::fake_forges::requests(&self.server).await
    }

    /// Take the departures recorded so far, for a test that provokes one on purpose.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().violations)
    }
}

struct GitLabResponder(Arc<Mutex<State>>);

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
        let r = Req {
            method: req.method.to_string(),
            query: req.url.query_pairs().into_owned().collect(),
            form,
            body,
        };
        let path: Vec<&str> = path.to_vec();
        if let Some(a) = projects::route(&mut s, &r, &path) {
            return a;
        }
        if let Some(a) = merge_requests::route(&mut s, &r, &path) {
            return a;
        }
        if let Some(a) = statuses::route(&mut s, &r, &path) {
            return a;
        }
        if let Some(a) = environments::route(&mut s, &r, &path) {
            return a;
        }
        deployments::route(&mut s, &r, &path).unwrap_or_else(not_found)
    }
}
