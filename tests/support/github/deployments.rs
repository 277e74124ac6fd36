//! Deployments and their statuses. As on GitHub, a `success` status with `auto_inactive` (the
//! default) marks the environment's other non-transient deployments inactive; transient ones are
//! left as they are.

use serde_json::{json, Value};

use super::{paged, shapes, Answer, Deployment, Req, State};

pub(super) fn route(s: &mut State, req: &Req, repo: &str, rest: &[&str]) -> Answer {
    match (req.method.as_str(), rest) {
        ("POST", []) => {
            let id = s.id();
            let value = shapes::deployment(repo, id, &req.body, &s.bot.clone());
            s.deployments.push(Deployment {
                repo: repo.into(),
                value: value.clone(),
                request: req.body.clone(),
                statuses: vec![],
            });
            Answer::created(value)
        }
        ("GET", []) => {
            let env = req.query("environment");
            let all: Vec<Value> = s
                .deployments
                .iter()
                .rev()
                .filter(|d| d.repo == repo && env.is_none_or(|e| d.value["environment"] == e))
                .map(|d| d.value.clone())
                .collect();
            paged(s, req, all, Value::Array)
        }
        ("POST", [id, "statuses"]) => status(s, req, repo, id.parse().unwrap_or(0)),
        ("GET", [id, "statuses"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(d) = s
                .deployments
                .iter()
                .find(|d| d.repo == repo && d.value["id"] == id)
            else {
                return Answer::not_found();
            };
            let newest_first: Vec<Value> = d.statuses.iter().rev().cloned().collect();
            paged(s, req, newest_first, Value::Array)
        }
        _ => Answer::not_found(),
    }
}

fn last_state(d: &Deployment) -> Option<&Value> {
    d.statuses.last().map(|l| &l["state"])
}

fn status(s: &mut State, req: &Req, repo: &str, id: u64) -> Answer {
    let Some(env) = s
        .deployments
        .iter()
        .find(|d| d.repo == repo && d.value["id"] == id)
        .map(|d| d.value["environment"].clone())
    else {
        return Answer::not_found();
    };
    let status_id = s.id();
    let bot = s.bot.clone();
    let body = &req.body;
    if body["state"] == "success" && body["auto_inactive"] != false {
        let mut next = s.next_id;
        for d in s.deployments.iter_mut() {
            let retire = d.repo == repo
                && d.value["environment"] == env
                && d.value["id"] != id
                && d.value["transient_environment"] != true
                && last_state(d) != Some(&json!("inactive"));
            if retire {
                let inactive = json!({"state": "inactive"});
                let n = d.value["id"].as_u64().unwrap_or(0);
                next += 1;
                d.statuses
                    .push(shapes::deployment_status(repo, n, next, &inactive, &bot));
            }
        }
        s.next_id = next;
    }
    let created = shapes::deployment_status(repo, id, status_id, body, &bot);
    if let Some(d) = s
        .deployments
        .iter_mut()
        .find(|d| d.repo == repo && d.value["id"] == id)
    {
        d.statuses.push(created.clone());
    }
    Answer::created(created)
}
