//! The forges' own published contracts, held against every exchange with the fakes.
//!
//! GitHub's REST API comes from `@octokit/openapi` (GitHub's OpenAPI description), its webhooks
//! from `@octokit/openapi-webhooks`, both pinned and fetched by `scripts/contracts.sh`, which
//! `./scripts/test.sh` runs and which leaves the cut-down JSON in `target/contracts/` (or
//! `$FLUX_EPHEMERAL_CONTRACTS`). A request that no operation describes, a query parameter the
//! operation does not declare or a value it does not allow, a body its schema refuses, an answer
//! of the fake with a field GitHub does not document: each is a [`Violation`], naming the operation
//! and the field. Validation is the `jsonschema` crate's.
//!
//! Without the contracts (a `cargo test` without `./scripts/test.sh`) the fakes answer unchecked
//! and say so once; under `FLUX_EPHEMERAL_REQUIRE_SERVERS=1` (CI) that is a failure instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

/// One departure from a published contract.
pub type Violation = String;

/// Where `scripts/contracts.sh` left the contracts, if it did.
fn dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FLUX_EPHEMERAL_CONTRACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(super::ROOT).join("target/contracts"));
    if dir.join("github-rest.json").is_file() {
        return Some(dir);
    }
    if std::env::var("FLUX_EPHEMERAL_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!(
            "GitHub's contracts are missing in {}: run scripts/contracts.sh {0} (./scripts/test.sh does)",
            dir.display()
        );
    }
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| {
        eprintln!("GitHub's contracts are not in {}: the fakes answer unchecked (./scripts/test.sh fetches them)", dir.display());
    });
    None
}

fn load(name: &str) -> Option<Value> {
    let path = dir()?.join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

type Validator = Arc<jsonschema::Validator>;

fn compile(schema: &Value) -> Validator {
    Arc::new(
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .unwrap_or_else(|e| panic!("a contract schema does not compile: {e}")),
    )
}

/// Every complaint of `validator` about `value`, each with the field it is about.
fn complaints(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .take(5)
        .map(|e| {
            let mut message = e.to_string();
            message.truncate(300);
            let at = e.instance_path().to_string();
            format!("{} {message}", if at.is_empty() { "/" } else { &at })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// GitHub's REST API

/// GitHub's REST API as the fake checks it: the path templates of every operation GitHub
/// describes, and the full description of those flux-ephemeral calls.
pub struct GitHubRest {
    templates: Vec<(String, Vec<String>)>,
    operations: serde_json::Map<String, Value>,
    error: Value,
    validators: Mutex<HashMap<String, Validator>>,
}

/// The contract, loaded once per test binary; `None` when it was not fetched.
pub fn github_rest() -> Option<&'static GitHubRest> {
    static REST: OnceLock<Option<GitHubRest>> = OnceLock::new();
    REST.get_or_init(|| {
        let v = load("github-rest.json")?;
        let templates = v["templates"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| {
                let (m, p) = t.as_str()?.split_once(' ')?;
                Some((m.to_string(), segments(p)))
            })
            .collect();
        Some(GitHubRest {
            templates,
            operations: v["operations"].as_object().unwrap().clone(),
            error: v["error"].clone(),
            validators: Mutex::new(HashMap::new()),
        })
    })
    .as_ref()
}

fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}

/// A request the fake received, as the contract sees it.
pub struct Exchange<'a> {
    pub method: &'a str,
    /// Without GitHub Enterprise's `/api/v3`.
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl GitHubRest {
    fn validator(&self, key: &str, schema: &Value) -> Validator {
        let mut cache = self.validators.lock().unwrap();
        cache
            .entry(key.to_string())
            .or_insert_with(|| compile(schema))
            .clone()
    }

    /// The operation (`METHOD /template`) `req` is, checked against its description.
    pub fn request(&self, req: &Exchange) -> Result<String, Violation> {
        let got = segments(req.path);
        let template = self
            .templates
            .iter()
            .filter(|(m, t)| m == req.method && t.len() == got.len())
            .filter(|(_, t)| {
                t.iter()
                    .zip(&got)
                    .all(|(t, g)| t == g || (t.starts_with('{') && !g.is_empty()))
            })
            .max_by_key(|(_, t)| t.iter().filter(|s| !s.starts_with('{')).count())
            .ok_or_else(|| {
                format!(
                    "{} {}: GitHub's OpenAPI description has no such operation",
                    req.method, req.path
                )
            })?;
        let key = format!("{} /{}", req.method, template.1.join("/"));
        let op = self.operations.get(&key).ok_or_else(|| {
            format!("{key}: not among the operations in tests/contracts/github/operations.txt")
        })?;
        let params = op["parameters"].as_object().unwrap();
        let mut problems = Vec::new();
        for (name, value) in template.1.iter().zip(&got) {
            if let Some(name) = name.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                problems.extend(self.parameter(&key, name, value, &params[name]));
            }
        }
        for (name, value) in &req.query {
            match params.get(name).filter(|p| p["in"] == "query") {
                Some(p) => problems.extend(self.parameter(&key, name, value, p)),
                None => problems.push(format!("query parameter {name:?} is not declared")),
            }
        }
        for (name, p) in params {
            if p["in"] == "query"
                && p["required"] == true
                && !req.query.iter().any(|(n, _)| n == name)
            {
                problems.push(format!("required query parameter {name:?} is missing"));
            }
        }
        problems.extend(self.body(&key, &op["requestBody"], req.body));
        if problems.is_empty() {
            Ok(key)
        } else {
            Err(format!(
                "{key} ({}): request: {}",
                op["operationId"].as_str().unwrap_or("?"),
                problems.join("; ")
            ))
        }
    }

    fn parameter(&self, op: &str, name: &str, raw: &str, p: &Value) -> Vec<String> {
        let schema = &p["schema"];
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let value = if types.contains(&"integer") {
            raw.parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(raw.into()))
        } else if types.contains(&"boolean") {
            raw.parse::<bool>()
                .map(Value::from)
                .unwrap_or(Value::String(raw.into()))
        } else {
            Value::String(raw.into())
        };
        let v = self.validator(&format!("{op} param {name}"), schema);
        complaints(&v, &value)
            .into_iter()
            .map(|c| format!("parameter {name}={raw:?}: {c}"))
            .collect()
    }

    fn body(&self, op: &str, schema: &Value, body: &[u8]) -> Vec<String> {
        if schema.is_null() {
            return if body.is_empty() {
                vec![]
            } else {
                vec!["a body where the operation takes none".into()]
            };
        }
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return vec!["the body is not JSON".into()];
        };
        let v = self.validator(&format!("{op} body"), schema);
        complaints(&v, &value)
            .into_iter()
            .map(|c| format!("body {c}"))
            .collect()
    }

    /// Check the fake's answer `status`/`body` to operation `op`: the schema GitHub documents for
    /// that status; for a status the operation does not list, GitHub's error shape (4xx, 5xx).
    /// Whether GitHub documents answer `status` for `op`.
    pub fn documents(&self, op: &str, status: u16) -> bool {
        self.operations[op]["responses"]
            .get(status.to_string())
            .is_some()
    }

    pub fn response(&self, op: &str, status: u16, body: &[u8]) -> Result<(), Violation> {
        let described = &self.operations[op];
        let code = status.to_string();
        let (key, schema) = match described["responses"].get(&code) {
            Some(s) => (format!("{op} {code}"), s.clone()),
            None if status >= 400 => ("error".to_string(), self.error.clone()),
            None => {
                return Err(format!(
                    "{op}: answered {status}, which GitHub does not document for it"
                ))
            }
        };
        let problems = if schema.is_null() {
            if body.is_empty() {
                vec![]
            } else {
                vec![format!("a body where GitHub answers {status} with none")]
            }
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(value) => complaints(&self.validator(&key, &schema), &value),
                Err(_) => vec!["the body is not JSON".into()],
            }
        };
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{op} ({}): the fake answered {status} with what GitHub does not document: {}",
                described["operationId"].as_str().unwrap_or("?"),
                problems.join("; ")
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub's webhooks

struct GitHubWebhooks {
    document: Value,
    validators: Mutex<HashMap<String, Validator>>,
}

fn github_webhooks() -> Option<&'static GitHubWebhooks> {
    static HOOKS: OnceLock<Option<GitHubWebhooks>> = OnceLock::new();
    HOOKS
        .get_or_init(|| {
            Some(GitHubWebhooks {
                document: load("github-webhooks.json")?,
                validators: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
}

/// Check a webhook payload of `event` against GitHub's schema for its event and action.
pub fn github_webhook(event: &str, payload: &Value) -> Result<(), Violation> {
    let Some(hooks) = github_webhooks() else {
        return Ok(());
    };
    let key = match payload["action"].as_str() {
        Some(a)
            if hooks.document["events"]
                .get(format!("{event}.{a}"))
                .is_some() =>
        {
            format!("{event}.{a}")
        }
        _ => event.to_string(),
    };
    let Some(target) = hooks.document["events"].get(&key) else {
        return Err(format!(
            "webhook {key}: GitHub's webhook schemas describe no such event and action"
        ));
    };
    let validator = hooks
        .validators
        .lock()
        .unwrap()
        .entry(key.clone())
        .or_insert_with(|| {
            compile(&serde_json::json!({
                "$ref": target["$ref"],
                "components": hooks.document["components"],
            }))
        })
        .clone();
    let problems = complaints(&validator, payload);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "webhook {key}: the payload departs from GitHub's schema: {}",
            problems.join("; ")
        ))
    }
}

/// [`github_webhook`], failing the test.
#[track_caller]
pub fn assert_github_webhook(event: &str, payload: &Value) {
    if let Err(v) = github_webhook(event, payload) {
        panic!("{v}");
    }
}

/// The payloads GitHub's `@octokit/webhooks-examples` captured, for `event`.
pub fn github_webhook_examples(event: &str) -> Option<Vec<Value>> {
    let all = load("github-webhook-examples.json")?;
    Some(
        all.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == event)
            .flat_map(|e| e["examples"].as_array().cloned().unwrap_or_default())
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// GitLab's REST API: the endpoints and parameters GitLab documents (tests/contracts/gitlab/)

struct GitLabEndpoint {
    method: String,
    template: Vec<String>,
    parameters: Vec<String>,
}

fn gitlab_endpoints() -> &'static [GitLabEndpoint] {
    static ENDPOINTS: OnceLock<Vec<GitLabEndpoint>> = OnceLock::new();
    ENDPOINTS.get_or_init(|| {
        include_str!("../contracts/gitlab/endpoints.txt")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let mut cols = l.split('|').map(str::trim);
                let (method, path) = cols.next().unwrap().split_once(' ').unwrap();
                GitLabEndpoint {
                    method: method.into(),
                    template: segments(path),
                    parameters: cols
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect(),
                }
            })
            .collect()
    })
}

/// Check a request to the fake GitLab (`path` below `/api/v4`, `parameters` the names in its
/// query and body) against the endpoints GitLab documents; the endpoint (`METHOD /template`).
pub fn gitlab_request(
    method: &str,
    path: &str,
    parameters: &[String],
) -> Result<String, Violation> {
    let got = segments(path);
    let endpoint = gitlab_endpoints()
        .iter()
        .filter(|e| e.method == method && e.template.len() == got.len())
        .filter(|e| {
            e.template
                .iter()
                .zip(&got)
                .all(|(t, g)| t == g || (t.starts_with('{') && !g.is_empty()))
        })
        .max_by_key(|e| e.template.iter().filter(|s| !s.starts_with('{')).count())
        .ok_or_else(|| {
            format!("{method} /{path}: not an endpoint in tests/contracts/gitlab/endpoints.txt")
        })?;
    let key = format!("{method} /{}", endpoint.template.join("/"));
    let unknown: Vec<&String> = parameters
        .iter()
        .filter(|p| !endpoint.parameters.contains(p))
        .collect();
    if unknown.is_empty() {
        Ok(key)
    } else {
        Err(format!(
            "{key}: parameters GitLab does not document for it: {unknown:?}"
        ))
    }
}
