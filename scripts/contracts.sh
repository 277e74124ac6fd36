#!/usr/bin/env bash
# GitHub's own published contracts for the tests' fakes, pinned and checked against the npm
# registry's published integrity (sha512), then cut down by scripts/contracts/extract.py:
#
#   scripts/contracts.sh OUT_DIR
#
#   @octokit/openapi            generated/api.github.com.deref.json (GitHub's REST API, OpenAPI 3.0.3)
#   @octokit/openapi-webhooks   generated/api.github.com.json (the webhook payload schemas)
#   @octokit/webhooks-examples  api.github.com/index.json (payloads captured from github.com)
#
# The tarballs are kept in ${XDG_CACHE_HOME:-~/.cache}/flux-ephemeral/contracts/. Prints nothing on
# success; exits non-zero (saying why) when a package cannot be had or its digest differs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: scripts/contracts.sh OUT_DIR}
cache=${FLUX_EPHEMERAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-ephemeral}/contracts
mkdir -p "$cache" "$out"

# name version integrity
packages=(
  "@octokit/openapi 23.0.2 sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg=="
  "@octokit/openapi-webhooks 12.1.0 sha512-Z5eDsLCUNbx1zHpZb1LNQirADqdMTvWJQ/deahi0ws+tWWnwHXB+Pr4jfmM9OrETS9Y5iW8ZRu1fdbudObhLrg=="
  "@octokit/webhooks-examples 7.6.1 sha512-De6U3XB6O3DtCa7bKgCMzTHdeopqqZ6SNivMYJnK65ierKL1AnNIA0tkRYCRS7lwGT792d+Ps1WbfHlso6MynQ=="
)

fetch() { # name version integrity → path of the checked tarball
  local name=$1 version=$2 integrity=$3 base tgz
  base=${name#@octokit/}
  tgz="$cache/octokit-$base-$version.tgz"
  if [ ! -f "$tgz" ] || [ "sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)" != "$integrity" ]; then
    rm -f "$tgz"
    if command -v npm >/dev/null; then
      (cd "$cache" && npm pack "$name@$version" --silent >/dev/null 2>&1) || true
    fi
    [ -f "$tgz" ] || curl -fsSL -o "$tgz" "https://registry.npmjs.org/$name/-/$base-$version.tgz" || true
  fi
  [ -f "$tgz" ] || { echo "contracts: could not download $name@$version" >&2; return 1; }
  if [ "sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)" != "$integrity" ]; then
    rm -f "$tgz"
    echo "contracts: $name@$version differs from the registry's published integrity" >&2
    return 1
  fi
  echo "$tgz"
}

stamp="$out/.stamp"
want="$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-16)-$(cat "$here/contracts/extract.py" "$here/../tests/contracts/github/operations.txt" | sha256sum | cut -c1-16)"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
read -r n v i <<<"${packages[0]}"; tar -xzf "$(fetch "$n" "$v" "$i")" -C "$work" package/generated/api.github.com.deref.json && mv "$work/package" "$work/openapi"
read -r n v i <<<"${packages[1]}"; tar -xzf "$(fetch "$n" "$v" "$i")" -C "$work" package/generated/api.github.com.json && mv "$work/package" "$work/webhooks"
read -r n v i <<<"${packages[2]}"; tar -xzf "$(fetch "$n" "$v" "$i")" -C "$work" package/api.github.com/index.json && mv "$work/package" "$work/examples"
python3 "$here/contracts/extract.py" "$work/openapi/generated/api.github.com.deref.json" \
  "$work/webhooks/generated/api.github.com.json" "$work/examples/api.github.com/index.json" \
  "$here/../tests/contracts/github/operations.txt" "$out"
echo "$want" > "$stamp"
