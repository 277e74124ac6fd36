#!/usr/bin/env python3
"""Turn GitHub's published contracts into the small JSON files the tests' fakes check against.

    extract.py OPENAPI_DEREF_JSON WEBHOOKS_JSON EXAMPLES_JSON OPERATIONS_TXT OUT_DIR

Writes OUT_DIR/github-rest.json, github-webhooks.json and github-webhook-examples.json. The REST
description is OpenAPI 3.0.3 (`nullable`); its schemas become JSON Schema 2020-12 here, and every
object schema is closed (`unevaluatedProperties: false`), so an answer of the fake with a field
GitHub does not document fails. Nothing is validated here: the tests do that with the `jsonschema`
crate. Standard library only.
"""
import json
import sys

# The webhook events `serve` reads (src/events/github.rs).
EVENTS = ["issue_comment", "pull_request", "push", "check_run", "check_suite", "status",
          "workflow_run", "deployment_status", "ping", "installation"]
DROP = ("description", "example", "examples", "x-github", "externalDocs", "title", "summary",
        "deprecated", "readOnly", "writeOnly", "discriminator", "xml")


def closed(schema, in_all_of=False):
    """OpenAPI 3.0 schema → JSON Schema 2020-12, objects closed."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    s = {k: v for k, v in schema.items() if k not in DROP}
    nullable = s.pop("nullable", False)
    if "properties" in s:
        s["properties"] = {k: closed(v) for k, v in s["properties"].items()}
    for k in ("items", "not"):
        if isinstance(s.get(k), dict):
            s[k] = closed(s[k])
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = closed(s["additionalProperties"])
    for k in ("anyOf", "oneOf"):
        if k in s:
            s[k] = [closed(x) for x in s[k]]
    if "allOf" in s:
        # Members of allOf stay open; the schema holding them is closed over all of them.
        s["allOf"] = [closed(x, True) for x in s["allOf"]]
    is_object = "properties" in s or "allOf" in s or s.get("type") == "object"
    if is_object and not in_all_of and "additionalProperties" not in s:
        s["unevaluatedProperties"] = False
    if nullable:
        if isinstance(s.get("type"), str) and "anyOf" not in s and "oneOf" not in s and "allOf" not in s:
            s["type"] = [s["type"], "null"]
            if "enum" in s and None not in s["enum"]:
                s["enum"] = s["enum"] + [None]
        else:
            s = {"anyOf": [s, {"type": "null"}]}
    return s


def rest(spec, wanted):
    templates = []
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete", "head"):
                templates.append(f"{method.upper()} {path}")
    operations = {}
    for key in wanted:
        method, path = key.split(" ", 1)
        op = spec["paths"].get(path, {}).get(method.lower())
        if op is None:
            sys.exit(f"extract.py: {key} is not an operation of GitHub's OpenAPI description")
        params = {}
        for p in op.get("parameters", []):
            params[p["name"]] = {"in": p["in"], "required": p.get("required", False),
                                 "schema": closed(p.get("schema", {}))}
        body = (op.get("requestBody") or {}).get("content", {}).get("application/json")
        responses = {}
        for code, r in op["responses"].items():
            c = (r.get("content") or {}).get("application/json")
            responses[code] = closed(c["schema"]) if c and "schema" in c else None
        operations[key] = {"operationId": op.get("operationId"),
                           "docs": (op.get("externalDocs") or {}).get("url"),
                           "parameters": params,
                           "requestBody": closed(body["schema"]) if body else None,
                           "responses": responses}
    # GitHub's error shape, for the statuses an operation does not list (404 for what is not
    # there, 401/403 for a token, 5xx in an outage).
    basic = spec["paths"]["/repos/{owner}/{repo}"]["get"]["responses"]["404"]["content"][
        "application/json"]["schema"]
    return {"info": spec["info"], "templates": templates, "operations": operations,
            "error": closed(basic)}


def refs(node, out):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith("#/components/schemas/"):
            out.add(r.rsplit("/", 1)[1])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def webhooks(spec):
    """`event.action` (or `event`) → the payload schema, with the components it reaches."""
    by_event = {}
    for hook, item in spec["webhooks"].items():
        op = item["post"]
        event = op["x-github"]["subcategory"]
        if event not in EVENTS:
            continue
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[1]
        # `pull-request-review-requested` → `pull_request.review_requested`; `push` → `push`.
        action = hook[len(event) + 1:].replace("-", "_")
        key = f"{event}.{action}" if action else event
        by_event[key] = {"$ref": f"#/components/schemas/{name}"}
    schemas = spec["components"]["schemas"]
    reach, todo = set(), [r["$ref"].rsplit("/", 1)[1] for r in by_event.values()]
    while todo:
        n = todo.pop()
        if n in reach:
            continue
        reach.add(n)
        found = set()
        refs(schemas[n], found)
        todo.extend(found - reach)
    return {"info": spec["info"], "events": by_event,
            "components": {"schemas": {n: schemas[n] for n in sorted(reach)}}}


def main():
    deref, hooks, examples, ops_file, out = sys.argv[1:6]
    wanted = [l.strip() for l in open(ops_file) if l.strip() and not l.startswith("#")]
    with open(deref) as f:
        spec = json.load(f)
    with open(f"{out}/github-rest.json", "w") as f:
        json.dump(rest(spec, wanted), f, sort_keys=True)
    del spec
    with open(hooks) as f:
        hooks_spec = json.load(f)
    with open(f"{out}/github-webhooks.json", "w") as f:
        json.dump(webhooks(hooks_spec), f, sort_keys=True)
    with open(examples) as f:
        ex = json.load(f)
    kept = [{"event": e["name"], "examples": e["examples"]} for e in ex if e["name"] in EVENTS]
    with open(f"{out}/github-webhook-examples.json", "w") as f:
        json.dump(kept, f, sort_keys=True)


if __name__ == "__main__":
    main()
