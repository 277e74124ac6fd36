#!/usr/bin/env python3
"""A burst of N signed `/deploy-ephemeral` deliveries to `serve`, against N one-by-one `deploy`
runs on the same repository (same run, same git daemon). Reports the time until all landed,
commits per event, accepted-to-pushed latency (p50/p99) and the server's peak RSS.

    python3 bench/burst.py [--n 20] [--bin target/release/flux-ephemeral]
"""
import argparse
import hashlib
import hmac
import http.server
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from common import DEFAULT_BIN, ROOT, ensure_binary, git_daemon, rss_mib, start_serve

SECRET = b"bench-secret"
SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


class FakeGitHub(http.server.BaseHTTPRequestHandler):
    """Just enough of GitHub's API: permission, pull request, comments, statuses. Connections are
    kept alive, as GitHub's are, and each answer leaves in one write (without Nagle's delay)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/user":
            return self.send(200, {"login": "flux-bot", "id": 1, "type": "User"})
        if path.endswith("/permission"):
            return self.send(200, {"permission": "write", "role_name": "write"})
        m = re.match(r"^/repos/org/app/pulls/(\d+)$", path)
        if m:
            n = int(m.group(1))
            repo = {"full_name": "org/app", "clone_url": "https://github.com/org/app.git"}
            return self.send(200, {"number": n, "state": "open", "title": f"Change {n}",
                                   "user": {"login": "writer"},
                                   "head": {"ref": f"feature/burst-{n}", "sha": SHA, "repo": repo},
                                   "base": {"ref": "main", "repo": repo}})
        if path.endswith("/comments"):
            return self.send(200, [])
        return self.send(404, {"message": "Not Found"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        return self.send(201, {"id": 1})

    def do_PATCH(self):
        return self.do_POST()


def comment(n):
    return json.dumps({
        "action": "created",
        "issue": {"number": n, "title": f"Change {n}",
                  "pull_request": {"url": f"https://api.github.com/repos/org/app/pulls/{n}"}},
        "comment": {"body": "/deploy-ephemeral", "user": {"login": "writer", "id": 2, "type": "User"}},
        "repository": {"full_name": "org/app", "clone_url": "https://github.com/org/app.git"},
        "sender": {"login": "writer"},
    }).encode()


def post(port, n):
    body = comment(n)
    sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/github", data=body, method="POST",
                                 headers={"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sig,
                                          "X-GitHub-Delivery": f"bench-{n}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def make_repo(base):
    work = os.path.join(base, "seed")
    os.makedirs(os.path.join(work, "overlays/ephemeral-instances"))
    with open(os.path.join(work, ".flux-ephemeral.yaml"), "w") as f:
        f.write("source_url: https://github.com/org/app.git\n")
    with open(os.path.join(work, "overlays/ephemeral-instances/sync.yaml"), "w") as f:
        f.write("kind: Kustomization\n")
    git = lambda *a, cwd=work: subprocess.run(["git", *a], cwd=cwd, check=True, capture_output=True)
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "seed")
    git("clone", "-q", "--bare", work, os.path.join(base, "gitops.git"), cwd=base)


def files(bare):
    out = subprocess.run(["git", "--git-dir", bare, "ls-tree", "--name-only", "main",
                          "overlays/ephemeral-instances/"], capture_output=True, text=True).stdout
    return set(l.rsplit("/", 1)[-1] for l in out.splitlines())


def commits(bare):
    return int(subprocess.run(["git", "--git-dir", bare, "rev-list", "--count", "main"],
                              capture_output=True, text=True).stdout)


def slug(binary, branch):
    out = subprocess.run([binary, "render", "--branch", branch, "--source-url", "x", "--output", "json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["slug"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--senders", type=int, default=0, help="concurrent senders (default: one per delivery)")
    ap.add_argument("--baseline", type=int, default=20, help="one-by-one deploys timed for the baseline")
    ap.add_argument("--bin", default=DEFAULT_BIN)
    args = ap.parse_args()
    ensure_binary(args.bin)
    n = args.n
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{api.server_address[1]}"
    names = {i: f"sync-{slug(args.bin, f'feature/burst-{i}')}.yaml" for i in range(1, n + 1)}
    env = dict(os.environ, GITHUB_API_URL=api_url, GITHUB_TOKEN="ghs-bench",
               GITHUB_WEBHOOK_SECRET=SECRET.decode(), FLUX_EPHEMERAL_RESYNC_INTERVAL="0")
    with tempfile.TemporaryDirectory() as base:
        # Baseline: N one-by-one deploys (what a server without batching does per delivery).
        one = os.path.join(base, "one")
        os.makedirs(one)
        make_repo(one)
        daemon, url = git_daemon(one)
        try:
            start = time.monotonic()
            for i in range(1, min(n, args.baseline) + 1):
                subprocess.run([args.bin, "deploy", "--repo", url, "--branch", f"feature/burst-{i}",
                                "--sha", SHA, "--id", str(i)], env=env, check=True, capture_output=True)
            # Per deploy, times n: what n one-by-one deploys take (measured on the first few).
            baseline = (time.monotonic() - start) / min(n, args.baseline) * n
        finally:
            daemon.kill()
        # The burst against serve.
        burst = os.path.join(base, "burst")
        os.makedirs(burst)
        make_repo(burst)
        bare = os.path.join(burst, "gitops.git")
        daemon, url = git_daemon(burst)
        server, port = start_serve(args.bin, url, os.path.join(base, "state"), env)
        try:
            before = commits(bare)
            accepted = {}
            start = time.monotonic()

            answers = {}
            queue = list(range(1, n + 1))
            lock = threading.Lock()

            def sender():
                while True:
                    with lock:
                        if not queue:
                            return
                        i = queue.pop(0)
                    status = post(port, i)
                    with lock:
                        answers[status] = answers.get(status, 0) + 1
                        if status == 202:
                            accepted[i] = time.monotonic()

            threads = [threading.Thread(target=sender) for _ in range(args.senders or n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if answers.get(202, 0) != n:
                raise SystemExit(f"not all accepted: {answers}")
            landed = {}
            while len(landed) < n:
                now = time.monotonic()
                present = files(bare)
                for i, name in names.items():
                    if i not in landed and name in present:
                        landed[i] = now
                if now - start > max(120, n / 10):
                    raise SystemExit(f"only {len(landed)} of {n} landed")
                time.sleep(0.02)
            total = time.monotonic() - start
            made = commits(bare) - before
            rss = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait()
            daemon.kill()
    lat = sorted(landed[i] - accepted[i] for i in range(1, n + 1))
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    est = "" if n <= args.baseline else f" (estimated from {args.baseline})"
    print(f"burst of {n} from {args.senders or n} senders, all accepted: all landed in {total:.2f} s; "
          f"{n} one-by-one deploys: {baseline:.2f} s{est} = {total / baseline:.3f}x")
    print(f"commits: {made} for {n} events ({made / n:.2f} per event)")
    print(f"accepted-to-pushed latency: p50 {p(0.5) * 1000:.0f} ms, p99 {p(0.99) * 1000:.0f} ms")
    print(f"serve peak RSS: {rss:.1f} MiB")


if __name__ == "__main__":
    main()
