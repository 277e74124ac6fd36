#!/usr/bin/env python3
"""cleanup of 5,000 environments against 5,000 pull requests (half of them closed).

Usage: bench/cleanup.py [--envs 5000] [--bin target/release/flux-ephemeral]

A GitOps repository holds ENVS environments (pull requests 1..ENVS), served by git daemon; a fake
GitHub API on 127.0.0.1 lists the open ones (the odd numbers) 100 a page with Link headers, as
GitHub does. Reports the cleanup's time, its API requests and commits, next to one `deploy` on the
same repository.
"""
import argparse
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from common import DEFAULT_BIN, ensure_binary, git_daemon

HERE = os.path.dirname(os.path.abspath(__file__))

SYNC = """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: app-pr-{n}
  namespace: flux-system
  annotations:
    flux-ephemeral.io/branch: "feature/pr-{n}"
    flux-ephemeral.io/deployed-at: "2026-11-01T00:00:00Z"
    flux-ephemeral.io/id: "{n}"
    flux-ephemeral.io/managed-by: "flux-ephemeral"
    flux-ephemeral.io/slug: "pr-{n}"
spec:
  interval: 1m
  url: "https://github.com/org/app.git"
  ref:
    branch: "feature/pr-{n}"
"""


def make_repo(dest, envs):
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", dest], check=True)
    fi = subprocess.Popen(["git", "--git-dir", dest, "fast-import", "--quiet"], stdin=subprocess.PIPE)
    out = fi.stdin
    msg = b"environments"
    out.write(b"commit refs/heads/main\ncommitter Bench <b@example.com> 1700000000 +0000\n")
    out.write(f"data {len(msg)}\n".encode() + msg + b"\n")

    def blob(path, text):
        data = text.encode()
        out.write(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")

    blob(".flux-ephemeral.yaml", "source_url: https://github.com/org/app.git\n")
    for n in range(1, envs + 1):
        blob(f"overlays/ephemeral-instances/sync-pr-{n}.yaml", SYNC.format(n=n))
    out.close()
    if fi.wait() != 0:
        sys.exit("fast-import failed")


class FakeGitHub(http.server.BaseHTTPRequestHandler):
    open_prs = []
    open_set = set()
    requests = 0
    single = 0

    def log_message(self, *args):
        pass

    def pull(self, n, state):
        repo = {"full_name": "org/app", "clone_url": "https://github.com/org/app.git"}
        return {"number": n, "state": state, "title": f"PR {n}", "user": {"login": "dev"},
                "head": {"ref": f"feature/pr-{n}", "sha": "0" * 40, "repo": repo},
                "base": {"ref": "main", "repo": repo}}

    def answer(self, status, value, extra=()):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        FakeGitHub.requests += 1
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        one = url.path.rsplit("/", 1)
        if one[0] == "/repos/org/app/pulls" and one[1].isdigit():
            # A pull request read on its own (cleanup confirms each one missing from the list).
            FakeGitHub.single += 1
            n = int(one[1])
            return self.answer(200, self.pull(n, "open" if n in FakeGitHub.open_set else "closed"))
        if url.path != "/repos/org/app/pulls" or q.get("state") != ["open"]:
            return self.answer(404, {"message": "Not Found"})
        per_page = int(q.get("per_page", ["30"])[0])
        page = int(q.get("page", ["1"])[0])
        items = FakeGitHub.open_prs[(page - 1) * per_page: page * per_page]
        extra = []
        if page * per_page < len(FakeGitHub.open_prs):
            host = self.headers["Host"]
            extra.append(("Link", f'<http://{host}/repos/org/app/pulls?state=open&per_page={per_page}&page={page + 1}>; rel="next"'))
        self.answer(200, [self.pull(n, "open") for n in items], extra)



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=5000)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    a = ap.parse_args()
    ensure_binary(a.bin)
    tmp = tempfile.mkdtemp(prefix="fe-bench-cleanup-")
    try:
        srv = os.path.join(tmp, "srv")
        os.makedirs(srv)
        repo = os.path.join(srv, "gitops.git")
        make_repo(repo, a.envs)
        daemon, url = git_daemon(srv)
        FakeGitHub.open_prs = [n for n in range(1, a.envs + 1) if n % 2 == 1]
        FakeGitHub.open_set = set(FakeGitHub.open_prs)
        api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        env = dict(os.environ, GITHUB_API_URL=f"http://127.0.0.1:{api.server_address[1]}", GITHUB_TOKEN="bench")
        count = lambda: int(subprocess.run(["git", "--git-dir", repo, "rev-list", "--count", "main"],
                                           capture_output=True, text=True, check=True).stdout)
        before = count()
        start = time.perf_counter()
        r = subprocess.run([a.bin, "cleanup", "--repo", url, "--target-branch", "main", "--github-repo", "org/app",
                            "--force", "--max-deletions", str(a.envs), "--output", "json"],
                           env=env, capture_output=True, text=True)
        cleanup_s = time.perf_counter() - start
        if r.returncode != 0:
            sys.exit(f"cleanup failed: {r.stderr}")
        report = json.loads(r.stdout)
        commits = count() - before
        start = time.perf_counter()
        subprocess.run([a.bin, "deploy", "--repo", url, "--target-branch", "main", "--branch", "bench/one"],
                       env=env, check=True, capture_output=True)
        deploy_s = time.perf_counter() - start
        left = subprocess.run(["git", "--git-dir", repo, "ls-tree", "--name-only", "main", "overlays/ephemeral-instances/"],
                              capture_output=True, text=True, check=True).stdout.count("\n")
        daemon.kill()
        api.shutdown()
        print(f"{a.envs} environments, {len(FakeGitHub.open_prs)} open pull requests, 100 a page")
        print(f"  cleanup: {cleanup_s:.3f}s, removed {len(report['removed'])}, {commits} commit(s), "
              f"{FakeGitHub.requests} API requests ({FakeGitHub.single} of them pull requests read on "
              f"their own to confirm they are closed); {left - 1} environments left")
        print(f"  one deploy on the same repository: {deploy_s:.3f}s (cleanup = {cleanup_s / deploy_s:.1f}x one deploy)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
