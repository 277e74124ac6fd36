#!/usr/bin/env python3
"""flux-ephemeral deploy against the ways it replaces, on a large repository served by git daemon.

Usage: bench/run.py [--runs 5] [--files 20000] [--commits 2000] [--bin target/release/flux-ephemeral]

Reports, as ratios measured in this same run, alternating the contenders, RUNS runs each:
  cold  flux-ephemeral deploy with an empty --cache-dir
        vs the shell-script proof: git clone --depth 1, write, git commit, git push
  warm  flux-ephemeral deploy with a warm --cache-dir
        vs the floor: an up-to-date bare mirror that fetches, rewrites only the trees along the
        path with git mktree, git commit-tree and git push (no working tree, no index)
  rss   peak resident memory of flux-ephemeral deploy (cold, the larger)
Medians are compared; every run's seconds are printed too.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import DEFAULT_BIN, ensure_binary, git_daemon

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = "overlays/ephemeral-instances"
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com",
               GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")


def timed(cmds, cwd=None):
    """Run commands one after another; return (seconds, peak RSS in MiB of the largest)."""
    start = time.perf_counter()
    peak = 0
    for cmd in cmds:
        if callable(cmd):
            cmd()
            continue
        p = subprocess.Popen(cmd, cwd=cwd, env=GIT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{err}")
        peak = max(peak, usage.ru_maxrss / 1024)
    return time.perf_counter() - start, peak


def git_out(*args, cwd=None, input=None):
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, input=input, capture_output=True,
                          text=True, check=True).stdout.strip()


def script_way(url, work, branch, content):
    """The shell-script proof of technology: clone, write, commit, push."""
    def write():
        with open(os.path.join(work, DIR, f"sync-{branch}.yaml"), "w") as f:
            f.write(content)
    return [
        ["git", "clone", "-q", "--depth", "1", "--branch", "main", url, work],
        write,
        ["git", "-C", work, "add", DIR],
        ["git", "-C", work, "commit", "-q", "-m", f"deploy {branch}"],
        ["git", "-C", work, "push", "-q", "origin", "HEAD:main"],
    ]


def floor_way(mirror, branch, content):
    """The floor: fetch into a bare mirror, rebuild the trees on the path, commit-tree, push."""
    def run():
        g = lambda *a, input=None: git_out("--git-dir", mirror, *a, input=input)
        g("fetch", "-q", "origin", "+refs/heads/main:refs/heads/main")
        blob = g("hash-object", "-w", "--stdin", input=content)
        parts = DIR.split("/")
        entry = f"100644 blob {blob}\tsync-{branch}.yaml"
        # innermost first: the instances dir gets the new entry, each parent the new subtree.
        for depth in range(len(parts), -1, -1):
            path = "/".join(parts[:depth])
            listing = g("ls-tree", f"main:{path}" if path else "main")
            name = entry.split("\t")[1]
            lines = [l for l in listing.splitlines() if l.split("\t")[1] != name] + [entry]
            tree = g("mktree", input="\n".join(lines) + "\n")
            if depth:
                entry = f"040000 tree {tree}\t{parts[depth - 1]}"
        commit = g("commit-tree", tree, "-p", "main", "-m", f"deploy {branch}")
        g("push", "-q", "origin", f"{commit}:refs/heads/main")
    return [run]




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    a = ap.parse_args()
    ensure_binary(a.bin)
    tmp = tempfile.mkdtemp(prefix="fe-bench-")
    try:
        srv = os.path.join(tmp, "srv")
        os.makedirs(srv)
        subprocess.run([sys.executable, os.path.join(HERE, "gen_repo.py"), os.path.join(srv, "gitops.git"),
                        "--files", str(a.files), "--commits", str(a.commits)], check=True)
        daemon, url = git_daemon(srv)
        content = open(os.path.join(HERE, "sample-sync.yaml")).read()
        tool = [a.bin, "deploy", "--repo", url, "--target-branch", "main",
                "--source-url", "https://git.example.com/org/app.git"]
        warm_cache = os.path.join(tmp, "warm-cache")
        timed([tool + ["--cache-dir", warm_cache, "--branch", "warmup"]])
        mirror = os.path.join(tmp, "mirror.git")
        git_out("clone", "-q", "--bare", url, mirror)

        res = {k: [] for k in ("cold", "script", "warm", "floor")}
        rss = []
        for i in range(a.runs):
            cache = os.path.join(tmp, f"cold-cache-{i}")
            t, peak = timed([tool + ["--cache-dir", cache, "--branch", f"cold-{i}"]])
            res["cold"].append(t)
            rss.append(peak)
            res["script"].append(timed(script_way(url, os.path.join(tmp, f"clone-{i}"), f"script-{i}", content))[0])
            res["warm"].append(timed([tool + ["--cache-dir", warm_cache, "--branch", f"warm-{i}"]])[0])
            res["floor"].append(timed(floor_way(mirror, f"floor-{i}", content))[0])
            shutil.rmtree(os.path.join(tmp, f"clone-{i}"), ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
        daemon.kill()

        files = git_out("--git-dir", os.path.join(srv, "gitops.git"), "ls-tree", "-r", "--name-only", "main").count("\n") + 1
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"repository: {files} files, {a.commits}+ commits, served by git daemon on 127.0.0.1; {a.runs} runs each, alternating")
        for k, v in res.items():
            print(f"  {k:6} median {med[k]:.3f}s  runs: {' '.join(f'{x:.3f}' for x in v)}")
        cold_ratio = med["cold"] / med["script"]
        warm_ratio = med["warm"] / med["floor"]
        print(f"cold deploy / clone --depth 1 + commit + push: {cold_ratio:.3f}x (target <= 0.1x)")
        print(f"warm deploy / bare-mirror git CLI floor:       {warm_ratio:.3f}x (target <= 0.7x)")
        print(f"peak RSS of deploy: {max(rss):.1f} MiB (target < 100 MiB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
