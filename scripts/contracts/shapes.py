#!/usr/bin/env python3
"""Write the fake GitHub's resource shapes from GitHub's own examples, made valid.

    shapes.py CONTRACTS_DIR OPENAPI_DEREF_JSON OUT_DIR
    shapes.py --webhooks CONTRACTS_DIR FIXTURES_DIR

GitHub's OpenAPI description carries an example answer for each operation; a few of them do not
pass their own schema (a field the schema lacks, a required one left out). This takes each example
the fake GitHub answers with, drops what the schema does not document, fills what it requires
(null where allowed, else the first enum value or an empty value of the type) and writes it to
OUT_DIR/<shape>.json. Run by hand when the pinned contracts move (needs `pip install jsonschema`);
the output is committed (tests/support/github/shapes/), so the tests need neither Python nor the
description. The examples are GitHub's, MIT-licensed (see the LICENSE note in OUT_DIR).
"""
import json
import sys

import jsonschema

SHAPES = {
    # shape: (operation, status, example name or None for the first, index into a list or None)
    "pull-request": ("GET /repos/{owner}/{repo}/pulls/{pull_number}", "200", None, None),
    "pull-request-simple": ("GET /repos/{owner}/{repo}/pulls", "200", None, 0),
    "full-repository": ("GET /repos/{owner}/{repo}", "200", None, None),
    "issue-comment": ("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", "201", None, None),
    "status": ("POST /repos/{owner}/{repo}/statuses/{sha}", "201", None, None),
    "combined-status": ("GET /repos/{owner}/{repo}/commits/{ref}/status", "200", None, None),
    "diff-entry": ("GET /repos/{owner}/{repo}/pulls/{pull_number}/files", "200", None, 0),
    "collaborator-permission": ("GET /repos/{owner}/{repo}/collaborators/{username}/permission", "200", None, None),
    "private-user": ("GET /user", "200", "response-with-public-and-private-profile-information", None),
    "rate-limit": ("GET /rate_limit", "200", None, None),
    "check-run-list": ("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", "200", None, None),
    "deployment": ("POST /repos/{owner}/{repo}/deployments", "201", None, None),
    "deployment-status": ("POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", "201", None, None),
    "integration": ("GET /app", "200", None, None),
    "installation": ("GET /repos/{owner}/{repo}/installation", "200", None, None),
    "installation-token": ("POST /app/installations/{installation_id}/access_tokens", "201", None, None),
}


COMPONENTS = {}

# Webhook payloads the tests send whose fixtures come from GitHub's captured examples
# (@octokit/webhooks-examples), made valid against the webhook schemas the same way.
WEBHOOKS = ["check_run.completed", "status", "push", "ping"]


def default(schema):
    if "$ref" in schema:
        return default(COMPONENTS[schema["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in schema or "oneOf" in schema:
        branches = schema.get("anyOf") or schema.get("oneOf")
        if any(b.get("type") == "null" for b in branches):
            return None
        return default(branches[0])
    if "allOf" in schema:
        out = {}
        for b in schema["allOf"]:
            v = default(b)
            if isinstance(v, dict):
                out.update(v)
        return out
    t = schema.get("type")
    if isinstance(t, list):
        if "null" in t:
            return None
        t = t[0]
    if "enum" in schema:
        return schema["enum"][0]
    if t == "string":
        return ""
    if t in ("integer", "number"):
        return 0
    if t == "boolean":
        return False
    if t == "array":
        return []
    if t == "object" or "properties" in schema:
        return {k: default(schema["properties"][k]) for k in schema.get("required", [])
                if k in schema.get("properties", {})}
    return None


def at(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def repair(value, schema, name):
    v = jsonschema.Draft202012Validator(schema)
    for _ in range(500):
        errors = sorted(v.iter_errors(value), key=lambda e: len(e.absolute_path))
        if not errors:
            return value
        e = errors[0]
        node = at(value, e.absolute_path)
        if e.validator == "unevaluatedProperties":
            known = set(e.schema.get("properties", {}))
            for sub in e.schema.get("allOf", []):
                known |= set(sub.get("properties", {}))
            for k in [k for k in node if k not in known]:
                del node[k]
        elif e.validator == "required":
            for k in e.validator_value:
                if k not in node:
                    node[k] = default(e.schema["properties"].get(k, {}))
        elif e.validator in ("type", "enum", "format") and e.absolute_path:
            parent = at(value, list(e.absolute_path)[:-1])
            parent[e.absolute_path[-1]] = default(e.schema)
        else:
            sys.exit(f"shapes.py: {name}: cannot repair {e.validator} at {list(e.absolute_path)}: {e.message[:200]}")
    sys.exit(f"shapes.py: {name}: still invalid")


def webhook_fixtures(contracts, out):
    hooks = json.load(open(f"{contracts}/github-webhooks.json"))
    COMPONENTS.update(hooks["components"]["schemas"])
    examples = json.load(open(f"{contracts}/github-webhook-examples.json"))
    for key in WEBHOOKS:
        event, _, action = key.partition(".")
        value = next(x for e in examples if e["event"] == event for x in e["examples"]
                     if not action or x.get("action") == action)
        schema = {"$ref": hooks["events"][key]["$ref"], "components": hooks["components"]}
        with open(f"{out}/{key}.payload.json", "w") as f:
            json.dump(repair(value, schema, key), f, indent=2, sort_keys=True)
            f.write("\n")


def main():
    if sys.argv[1] == "--webhooks":
        return webhook_fixtures(*sys.argv[2:4])
    contracts, deref, out = sys.argv[1:4]
    rest = json.load(open(f"{contracts}/github-rest.json"))
    spec = json.load(open(deref))
    for shape, (key, status, example, index) in SHAPES.items():
        method, path = key.split(" ", 1)
        content = spec["paths"][path][method.lower()]["responses"][status]["content"]["application/json"]
        examples = content["examples"]
        value = examples[example or next(iter(examples))]["value"]
        schema = rest["operations"][key]["responses"][status]
        if index is not None:
            value = value[index]
            schema = schema["items"]
        elif "oneOf" in schema:
            schema = schema["oneOf"][0]
        with open(f"{out}/{shape}.json", "w") as f:
            json.dump(repair(value, schema, shape), f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
