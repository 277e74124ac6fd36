#!/usr/bin/env python3
"""Generate a large GitOps repository with git fast-import.

Usage: gen_repo.py DEST.git [--files 20000] [--commits 2000] [--envs 200]

The first commit holds FILES manifests spread over apps/teams, the example overlays and ENVS
sync files in overlays/ephemeral-instances; every further commit changes an image tag in one app,
as CI bots do in a busy GitOps repository.
"""
import argparse
import os
import subprocess
import sys

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: team-{team}
  labels:
    app.kubernetes.io/name: {name}
    app.kubernetes.io/part-of: team-{team}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      containers:
        - name: {name}
          image: registry.example.com/team-{team}/{name}:{tag}
          resources:
            requests:
              cpu: {cpu}m
              memory: {mem}Mi
"""

SYNC = """---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: app-env-{i}
  namespace: flux-system
  annotations:
    flux-ephemeral.io/branch: "feature/env-{i}"
    flux-ephemeral.io/deployed-at: "2026-01-01T00:00:00Z"
    flux-ephemeral.io/managed-by: "flux-ephemeral"
    flux-ephemeral.io/slug: "env-{i}"
spec:
  interval: 1m
  url: "https://git.example.com/org/app.git"
  ref:
    branch: "feature/env-{i}"
"""


def blob(out, path, text):
    data = text.encode()
    out.write(f"M 100644 inline {path}\ndata {len(data)}\n".encode())
    out.write(data)
    out.write(b"\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dest")
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--envs", type=int, default=200)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", a.dest], check=True)
    fi = subprocess.Popen(["git", "--git-dir", a.dest, "fast-import", "--quiet"], stdin=subprocess.PIPE)
    out = fi.stdin
    when = 1_700_000_000

    def commit(msg, n):
        out.write(f"commit refs/heads/main\ncommitter Bench <bench@example.com> {when + n} +0000\n".encode())
        m = msg.encode()
        out.write(f"data {len(m)}\n".encode() + m + b"\n")

    apps = a.files // 5
    commit("initial layout", 0)
    for i in range(apps):
        team = i % 50
        for kind in ("deployment", "service", "configmap", "hpa", "pdb"):
            blob(out, f"apps/team-{team}/app-{i}/{kind}.yaml",
                 MANIFEST.format(name=f"app-{i}-{kind}", team=team, replicas=1 + i % 3, tag="v1.0.0",
                                 cpu=10 + i % 90, mem=32 + i % 200))
    for dirpath, _, names in os.walk(os.path.join(root, "overlays")):
        for n in names:
            full = os.path.join(dirpath, n)
            with open(full) as f:
                blob(out, os.path.relpath(full, root), f.read())
    blob(out, ".flux-ephemeral.yaml", "source_url: https://git.example.com/org/app.git\n")
    for i in range(a.envs):
        blob(out, f"overlays/ephemeral-instances/sync-env-{i}.yaml", SYNC.format(i=i))
    for n in range(1, a.commits):
        commit(f"bump app-{n % apps} to v1.0.{n}", n)
        i = (n * 7919) % apps
        team = i % 50
        blob(out, f"apps/team-{team}/app-{i}/deployment.yaml",
             MANIFEST.format(name=f"app-{i}-deployment", team=team, replicas=1 + i % 3, tag=f"v1.0.{n}",
                             cpu=10 + i % 90, mem=32 + i % 200))
    out.close()
    if fi.wait() != 0:
        sys.exit("fast-import failed")
    subprocess.run(["git", "--git-dir", a.dest, "repack", "-adq"], check=True)
    files = subprocess.run(["git", "--git-dir", a.dest, "ls-tree", "-r", "--name-only", "main"],
                           capture_output=True, text=True, check=True).stdout.count("\n")
    commits = subprocess.run(["git", "--git-dir", a.dest, "rev-list", "--count", "main"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"generated {a.dest}: {files} files, {commits} commits")


if __name__ == "__main__":
    main()
