#!/usr/bin/env python3
"""What a commit of `serve` costs as the GitOps repository fills up: the same burst of signed
`/deploy-ephemeral` deliveries (default 300 from 32 senders) against a repository already holding
100 previews, then 10,000 (same run, same fake GitHub, same git daemon), each after one warm-up
delivery (serve's first read of every blob is a start-up cost, reported apart). Reports, for each, the
time until all landed, the commits, the seconds a commit and serve's peak RSS, and the ratio of a
commit's cost at 10,000 to its cost at 100 (the goal: about 1x).

    python3 bench/scale.py [--n 300] [--senders 32] [--small 100] [--large 10000]
"""
import argparse
import os
import tempfile
import threading
import time

from common import DEFAULT_BIN, ensure_binary, git_daemon, rss_mib, start_serve
from burst import FakeGitHub, SECRET, commits, files, post, slug
from cleanup import make_repo

import http.server


def burst(binary, base, envs, n, senders, env, names):
    """Serve on a repository holding `envs` previews; (seconds, commits) for `n` deliveries."""
    os.makedirs(base)
    bare = os.path.join(base, "gitops.git")
    make_repo(bare, envs)
    daemon, url = git_daemon(base)
    server, port = start_serve(binary, url, os.path.join(base, "state"), env)
    try:
        # One delivery first: serve's first read of the repository (every blob, once) is a
        # start-up cost, not a commit's; the burst is timed from a warm server.
        warm = time.monotonic()
        if post(port, 99_999) != 202:
            raise SystemExit("the warm-up delivery was not accepted")
        while names[99_999] not in files(bare):
            if time.monotonic() - warm > 120:
                raise SystemExit("the warm-up delivery did not land")
            time.sleep(0.05)
        warm = time.monotonic() - warm
        before = commits(bare)
        queue = list(range(100_001, 100_001 + n))
        lock = threading.Lock()
        start = time.monotonic()

        def sender():
            while True:
                with lock:
                    if not queue:
                        return
                    i = queue.pop(0)
                if post(port, i) != 202:
                    raise SystemExit(f"delivery {i} not accepted")

        threads = [threading.Thread(target=sender) for _ in range(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        want = set(v for k, v in names.items() if k != 99_999)
        while not want <= files(bare):
            if time.monotonic() - start > 600:
                raise SystemExit(f"only {len(want & files(bare))} of {n} landed")
            time.sleep(0.05)
        total = time.monotonic() - start
        made = commits(bare) - before
        return total, made, rss_mib(server.pid), warm
    finally:
        server.terminate()
        server.wait()
        daemon.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--senders", type=int, default=32)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=10000)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    a = ap.parse_args()
    ensure_binary(a.bin)
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = dict(os.environ, GITHUB_API_URL=f"http://127.0.0.1:{api.server_address[1]}",
               GITHUB_TOKEN="ghs-bench", GITHUB_WEBHOOK_SECRET=SECRET.decode(),
               FLUX_EPHEMERAL_RESYNC_INTERVAL="0")
    names = {i: f"sync-{slug(a.bin, f'feature/burst-{i}')}.yaml"
             for i in [99_999, *range(100_001, 100_001 + a.n)]}
    results = {}
    with tempfile.TemporaryDirectory() as base:
        for envs in (a.small, a.large):
            total, made, rss, warm = burst(a.bin, os.path.join(base, f"{envs}-{len(results)}"), envs, a.n,
                                           a.senders, env, names)
            results[envs] = (total, made, rss)
            print(f"{envs:>6} previews: {a.n} deliveries landed in {total:.2f} s, {made} commits, "
                  f"{total / made:.3f} s a commit, serve peak RSS {rss:.1f} MiB "
                  f"(first delivery, from a cold start: {warm:.2f} s)")
    small, large = results[a.small], results[a.large]
    print(f"a commit at {a.large} previews / at {a.small}: "
          f"{(large[0] / large[1]) / (small[0] / small[1]):.2f}x")


if __name__ == "__main__":
    main()
