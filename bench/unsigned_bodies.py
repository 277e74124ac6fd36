#!/usr/bin/env python3
"""Abuse: C concurrent clients each POST a large body (24 MB by default) with a wrong signature
to `serve`, several rounds. Reports the server's peak RSS against its own idle RSS in the same run
(the baseline) and against the 256 MiB limit of the shipped Deployment; every request must be
refused (401, or 503 while the body budget is taken), none accepted.

    python3 bench/unsigned_bodies.py [--clients 50] [--mb 24] [--bin target/release/flux-ephemeral]
"""
import argparse
import os
import socket
import tempfile
import threading
import time

from burst import make_repo
from common import DEFAULT_BIN, ensure_binary, git_daemon, rss_mib, start_serve

LIMIT_MIB = 256


def post(port, size, statuses):
    chunk = b"x" * (1 << 20)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall((f"POST /hooks/github HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                   f"X-GitHub-Event: issue_comment\r\nX-Hub-Signature-256: sha256={'0' * 64}\r\n"
                   f"Content-Length: {size}\r\nConnection: close\r\n\r\n").encode())
        sent = 0
        while sent < size:
            n = min(len(chunk), size - sent)
            s.sendall(chunk[:n])
            sent += n
        answer = s.recv(64).decode(errors="replace")
        statuses.append(answer.split(" ")[1] if " " in answer else "none")
        s.close()
    except OSError as e:
        # The server answered (503: the body budget is taken) and closed before reading it.
        statuses.append("closed unread")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--mb", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    args = ap.parse_args()
    ensure_binary(args.bin)
    env = dict(os.environ, GITHUB_WEBHOOK_SECRET="bench-secret", GITHUB_API_URL="http://127.0.0.1:9",
               GITHUB_TOKEN="ghs-bench", FLUX_EPHEMERAL_RESYNC_INTERVAL="0")
    with tempfile.TemporaryDirectory() as base:
        make_repo(base)
        daemon, url = git_daemon(base)
        server, port = start_serve(args.bin, url, os.path.join(base, "state"), env)
        try:
            time.sleep(0.5)
            idle = rss_mib(server.pid, "VmRSS")
            statuses = []
            start = time.monotonic()
            for _ in range(args.rounds):
                threads = [threading.Thread(target=post, args=(port, args.mb << 20, statuses))
                           for _ in range(args.clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            took = time.monotonic() - start
            peak = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait()
            daemon.kill()
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"{args.clients} clients x {args.rounds} rounds x {args.mb} MB unsigned: answers {counts} in {took:.1f} s")
    print(f"serve idle RSS {idle:.1f} MiB, peak RSS {peak:.1f} MiB: {peak / idle:.2f}x idle, "
          f"{peak / LIMIT_MIB:.2f}x the shipped {LIMIT_MIB} MiB limit")
    if "202" in counts or "200" in counts:
        raise SystemExit("an unsigned body was accepted")
    if peak >= LIMIT_MIB:
        raise SystemExit("peak memory over the shipped limit")


if __name__ == "__main__":
    main()
