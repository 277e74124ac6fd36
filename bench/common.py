"""What the benchmark scripts share: the binary, and a git daemon on 127.0.0.1."""
import os
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.path.join(ROOT, "target/release/flux-ephemeral")


def ensure_binary(path):
    """Build the release binary when it is missing."""
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def git_daemon(base):
    """Serve `base` (holding gitops.git) with push enabled; (process, URL) once it listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                             "--listen=127.0.0.1", f"--port={port}", f"--base-path={base}", base],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return proc, f"git://127.0.0.1:{port}/gitops.git"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("git daemon did not start")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_serve(binary, url, state_dir, env):
    """`serve` on a free port for the GitOps repository `url`, journaling in `state_dir`;
    (process, port) once it listens."""
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--repo", url,
                             "--state-dir", state_dir],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("serve did not listen")


def rss_mib(pid, field="VmHWM"):
    """A process's resident memory in MiB: `VmHWM` (peak) or `VmRSS` (now)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024
