#!/usr/bin/env bash
# A real Gitea on 127.0.0.1 for the tests: a forge with pull requests, comments, commit statuses,
# signed webhooks and HTTP Git pushes with a token, so one end-to-end test needs no fake at all.
#
#   scripts/real-gitea.sh start DIR   build (once, cached) and start Gitea; prints shell lines
#                                     GITEA_URL=, GITEA_ADMIN_USER=, GITEA_ADMIN_TOKEN=, GITEA_VERSION=
#   scripts/real-gitea.sh stop DIR    stop what `start DIR` started
#   scripts/real-gitea.sh build       only build, into the cache; prints the cache directory
#
# Gitea is built from its Go module through the wrapper module in scripts/real-gitea/, whose go.mod
# repeats Gitea's own replace and exclude lines (a dependency's are ignored) and whose go.sum pins
# every dependency. It needs cgo for SQLite (`-tags sqlite sqlite_unlock_notify`); a cold build
# takes about 3 minutes on 2 cores after a 100 MB download, then it is cached in
# ${XDG_CACHE_HOME:-~/.cache}/flux-ephemeral/real-gitea/<version>-<module hash>/. Without the
# `bindata` tag Gitea reads options/, templates/ and public/ from its work path: they are copied
# from the module next to the binary. Loopback only, SQLite, no SSH, no registration, no mail.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
module="$here/real-gitea"
GITEA_VERSION=$(sed -n 's|^[[:space:]]*code.gitea.io/gitea \(v[^ ]*\).*|\1|p' "$module/go.mod")
ADMIN_USER=fe-admin
# Gitea's version is main.Version (its API, and clients such as Flux's gitea Provider, read it).
LDFLAGS="-s -w -X main.Version=${GITEA_VERSION#v}"

export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"

die() { echo "real-gitea: $*" >&2; exit 1; }
say() { echo "real-gitea: $*" >&2; }

cache_dir() {
  local base=${FLUX_EPHEMERAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-ephemeral}
  local hash
  hash=$( (cat "$module/go.mod" "$module/go.sum"; echo "$LDFLAGS") | sha256sum | cut -c1-10)
  echo "$base/real-gitea/gitea-$GITEA_VERSION-$hash"
}

build() {
  local dest tmp src t0
  dest=$(cache_dir)
  if [ -x "$dest/gitea" ] && [ -f "$dest/complete" ]; then
    echo "$dest"
    return
  fi
  command -v go >/dev/null || die "Go is needed to build Gitea once (Go $(sed -n 's/^go //p' "$module/go.mod") or newer)"
  command -v gcc >/dev/null || die "a C compiler is needed for Gitea's SQLite (apt-get install gcc)"
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp -d "$dest.building.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  t0=$SECONDS
  say "building Gitea $GITEA_VERSION from its Go module (about 3 minutes, once)"
  CGO_ENABLED=1 go build -C "$module" -trimpath -tags "sqlite sqlite_unlock_notify" \
    -ldflags "$LDFLAGS" \
    -o "$tmp/gitea" code.gitea.io/gitea >&2
  src=$(go mod download -C "$module" -json "code.gitea.io/gitea@$GITEA_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  for d in options templates public; do
    cp -R "$src/$d" "$tmp/$d"
  done
  chmod -R u+w "$tmp"
  touch "$tmp/complete"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
  say "built Gitea in $((SECONDS - t0)) s"
  echo "$dest"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 cache port work conf t0 token root_line=""
  cache=$(build)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/gitea.pid" ] && stop "$dir" >/dev/null 2>&1 || true
  work="$dir/work"
  rm -rf "$work"
  mkdir -p "$work/custom/conf" "$dir/home"
  for d in options templates public; do ln -s "$cache/$d" "$work/$d"; done
  port=$(free_port)
  conf="$work/custom/conf/app.ini"
  [ "$(id -u)" = 0 ] && root_line="I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true"
  cat > "$conf" <<EOF
APP_NAME = flux-ephemeral tests
RUN_MODE = prod
WORK_PATH = $work
$root_line

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = $port
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:$port/
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = $work/data

[database]
DB_TYPE = sqlite3
PATH = $work/data/gitea.db

[repository]
ROOT = $work/repositories

[security]
INSTALL_LOCK = true
SECRET_KEY = $(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
MIN_PASSWORD_LENGTH = 8
PASSWORD_COMPLEXITY = off

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
ENABLE_NOTIFY_MAIL = false

[mailer]
ENABLED = false

[webhook]
; Deliveries to the tests' servers on 127.0.0.1.
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 10

[cron]
ENABLED = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[log]
MODE = file
LEVEL = Warn
ROOT_PATH = $dir/log

[session]
PROVIDER = memory

[oauth2]
ENABLED = false
EOF
  export HOME="$dir/home" GITEA_WORK_DIR="$work"
  "$cache/gitea" --config "$conf" --work-path "$work" migrate > "$dir/migrate.log" 2>&1 \
    || { cat "$dir/migrate.log" >&2; die "the database migration failed"; }
  "$cache/gitea" --config "$conf" --work-path "$work" admin user create --admin \
    --username "$ADMIN_USER" --password "fe-admin-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    --email "$ADMIN_USER@example.com" --must-change-password=false > "$dir/admin.log" 2>&1 \
    || { cat "$dir/admin.log" >&2; die "creating the admin user failed"; }
  token=$("$cache/gitea" --config "$conf" --work-path "$work" admin user generate-access-token \
    --username "$ADMIN_USER" --token-name tests --scopes all --raw 2> "$dir/token.log" | tail -n 1) \
    || { cat "$dir/token.log" >&2; die "creating the admin token failed"; }
  [[ "$token" =~ ^[0-9a-f]{40}$ ]] || die "the admin token did not come out (see $dir/token.log)"
  nohup "$cache/gitea" --config "$conf" --work-path "$work" web > "$dir/gitea.log" 2>&1 &
  echo $! > "$dir/gitea.pid"
  t0=$SECONDS
  until curl -fsS "http://127.0.0.1:$port/api/v1/version" >/dev/null 2>&1; do
    kill -0 "$(cat "$dir/gitea.pid")" 2>/dev/null || { tail -20 "$dir/gitea.log" >&2; die "Gitea exited"; }
    [ $((SECONDS - t0)) -lt 60 ] || { tail -20 "$dir/gitea.log" >&2; die "Gitea did not answer within 60 s"; }
    sleep 0.2
  done
  {
    echo "GITEA_URL=http://127.0.0.1:$port"
    echo "GITEA_ADMIN_USER=$ADMIN_USER"
    echo "GITEA_ADMIN_TOKEN=$token"
    echo "GITEA_VERSION=$GITEA_VERSION"
  } | tee "$dir/env"
  say "Gitea $GITEA_VERSION on http://127.0.0.1:$port in $((SECONDS - t0)) s"
}

stop() {
  local dir=$1 pid
  [ -f "$dir/gitea.pid" ] || return 0
  pid=$(cat "$dir/gitea.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/gitea.pid"
}

case "${1:-}" in
  start) [ -n "${2:-}" ] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [ -n "${2:-}" ] || die "usage: $0 stop DIR"; stop "$2" ;;
  build) build ;;
  *) die "usage: $0 start DIR | stop DIR | build" ;;
esac
