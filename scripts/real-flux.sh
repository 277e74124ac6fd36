#!/usr/bin/env bash
# A real Kubernetes control plane and real Flux controllers on 127.0.0.1, for the end-to-end tests.
#
#   scripts/real-flux.sh start DIR     build (once, cached) and start everything; prints shell lines
#   scripts/real-flux.sh stop DIR      stop what `start DIR` started (by its pid files)
#   scripts/real-flux.sh build         only build, into the cache; prints the cache directory
#   scripts/real-flux.sh update-modules  regenerate modules/*/go.{mod,sum} from scripts/real-flux/versions
#
# What runs: etcd, kube-apiserver, kube-controller-manager (namespaces, Deployments, ReplicaSets,
# garbage collection), kube-scheduler, kwok with one fake node (so Pods become Ready and Flux's
# health checks mean something), and Flux's source-, kustomize-, helm- and notification-controller
# outside the cluster with an admin kubeconfig, as their own `make run` does. Everything is built
# from Go modules (Go and the module proxy are needed once; nothing is downloaded as a binary) into
# ${XDG_CACHE_HOME:-~/.cache}/flux-ephemeral/real-flux/<versions>/, so a second start takes seconds.
# A cold build takes about 16 minutes on 2 cores and needs ~13 GB of Go caches.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
modules="$here/real-flux/modules"
# shellcheck source=real-flux/versions
. "$here/real-flux/versions"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"

die() { echo "real-flux: $*" >&2; exit 1; }
say() { echo "real-flux: $*" >&2; }

modules_hash() {
  (cd "$modules" && find . -type f -name 'go.*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-10)
}

cache_dir() {
  local base=${FLUX_EPHEMERAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-ephemeral}
  echo "$base/real-flux/flux-$FLUX_VERSION-k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-$(modules_hash)"
}

# ---------------------------------------------------------------------------------------------
# Building

gobuild() { # module output package [extra ldflags]
  local t0=$SECONDS
  go build -C "$modules/$1" -trimpath -ldflags "-s -w ${4:-}" -o "$2" "$3"
  say "built $(basename "$2") in $((SECONDS - t0)) s"
}

module_dir() { # module@version → its directory in the module cache (downloaded if needed)
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

build() {
  local dest tmp
  dest=$(cache_dir)
  if [ -x "$dest/bin/notification-controller" ] && [ -f "$dest/complete" ]; then
    echo "$dest"
    return
  fi
  command -v go >/dev/null || die "Go is needed to build the stack once (apt-get install golang, or Go $(sed -n 's/^go //p' "$modules/kube/go.mod") or newer)"
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp -d "$dest.building.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/bin" "$tmp/crds"
  local t0=$SECONDS kv=${KUBERNETES_VERSION#v} minor
  minor=$(echo "$kv" | cut -d. -f2)
  say "building the real Flux stack into $dest (first time only; about 16 minutes on 2 cores)"
  local stamp="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  stamp="$stamp -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  gobuild etcd "$tmp/bin/etcd" go.etcd.io/etcd/server/v3
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    gobuild kube "$tmp/bin/$c" "k8s.io/kubernetes/cmd/$c" "$stamp"
  done
  gobuild kwok "$tmp/bin/kwok" sigs.k8s.io/kwok/cmd/kwok
  for pair in "source-controller@$SOURCE_CONTROLLER_VERSION" "kustomize-controller@$KUSTOMIZE_CONTROLLER_VERSION" \
    "helm-controller@$HELM_CONTROLLER_VERSION" "notification-controller@$NOTIFICATION_CONTROLLER_VERSION"; do
    local c=${pair%@*}
    gobuild "$c" "$tmp/bin/$c" "github.com/fluxcd/$c"
    cp "$(cd "$modules/$c" && module_dir "github.com/fluxcd/$pair")"/config/crd/bases/*.yaml "$tmp/crds/"
  done
  chmod -R u+w "$tmp/crds"
  echo "$((SECONDS - t0))" > "$tmp/build-seconds"
  touch "$tmp/complete"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
  say "built everything in $((SECONDS - t0)) s"
  echo "$dest"
}

update_modules() {
  command -v go >/dev/null || die "Go is needed"
  export GOFLAGS=-buildvcs=false
  local m
  wrapper() { rm -rf "$modules/$1"; mkdir -p "$modules/$1"; (cd "$modules/$1" && go mod init "e2e-$1" >/dev/null 2>&1); }
  # Kubernetes: k8s.io/kubernetes pins its staging modules at v0.0.0 with local replaces, which a
  # dependency cannot follow; pin each to the matching v0.N.P release instead.
  wrapper kube
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  for m in $(grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$gomod" | awk '{print $1}'); do
    go mod edit -C "$modules/kube" -replace "$m=$m@v0.${KUBERNETES_VERSION#v1.}"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    (cd "$modules/kube" && go get "k8s.io/kubernetes/cmd/$c@$KUBERNETES_VERSION")
  done
  wrapper etcd
  (cd "$modules/etcd" && for m in server/v3 api/v3 client/pkg/v3 client/v3 pkg/v3; do go mod edit -require "go.etcd.io/etcd/$m@$ETCD_VERSION"; done && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  wrapper kwok
  (cd "$modules/kwok" && go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  # Flux controllers: each has `replace .../api => ./api` (a separate module); copy every other
  # replace verbatim and require the api module at the controller's own version.
  for pair in "source-controller@$SOURCE_CONTROLLER_VERSION" "kustomize-controller@$KUSTOMIZE_CONTROLLER_VERSION" \
    "helm-controller@$HELM_CONTROLLER_VERSION" "notification-controller@$NOTIFICATION_CONTROLLER_VERSION"; do
    local c=${pair%@*} v=${pair#*@}
    wrapper "$c"
    gomod=$(go mod download -json "github.com/fluxcd/$pair" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    python3 - "$gomod" <<'PY' | while read -r r; do go mod edit -C "$modules/$c" -replace "$r"; done
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r'replace\s*\((.*?)\)', text, re.S) + re.findall(r'^replace\s+(.+)$', text, re.M)
for b in blocks:
    for line in b.strip().splitlines():
        line = line.split('//')[0].strip()
        if '=>' in line and '=> ./' not in line:
            old, new = [x.strip() for x in line.split('=>')]
            print(old.replace(' ', '@') + '=' + new.replace(' ', '@'))
PY
    # Versions the module proxy here does not serve, and their nearest served replacement.
    go mod edit -C "$modules/$c" -replace github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0
    if [ "$c" = helm-controller ]; then
      go mod edit -C "$modules/$c" -dropreplace helm.sh/helm/v4
      go mod edit -C "$modules/$c" -replace "helm.sh/helm/v4=helm.sh/helm/v4@$(grep -oE 'helm.sh/helm/v4 v[0-9.]+' "$gomod" | head -1 | awk '{print $2}')"
    fi
    go mod edit -C "$modules/$c" -require "github.com/fluxcd/$c@$v" -require "github.com/fluxcd/$c/api@$v"
    (cd "$modules/$c" && go get "github.com/fluxcd/$pair")
  done
  say "modules regenerated; run '$0 build' and commit scripts/real-flux/modules"
}

# ---------------------------------------------------------------------------------------------
# Running

components="etcd kube-apiserver kube-controller-manager kube-scheduler kwok source-controller kustomize-controller helm-controller notification-controller"

tail_log() { # name
  local log="$dir/logs/$1.log"
  [ -f "$log" ] || return 0
  echo "---- last lines of $log ----" >&2
  tail -n 25 "$log" | cut -c1-400 >&2
  echo "----" >&2
}

alive() { # name → the pid is ours and running
  local pidf="$dir/pids/$1.pid" pid
  [ -f "$pidf" ] || return 1
  pid=$(cat "$pidf")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$bin/$1 "
}

launch() { # name args...
  local name=$1
  shift
  setsid "$bin/$name" "$@" > "$dir/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/pids/$name.pid"
}

fail_start() { # name reason
  say "$1 $2"
  tail_log "$1"
  stop_all
  exit 1
}

wait_http() { # name url seconds [curl args...]
  local name=$1 url=$2 limit=$3
  shift 3
  local deadline=$((SECONDS + limit))
  until curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; do
    alive "$name" || fail_start "$name" "exited before answering"
    [ $SECONDS -lt $deadline ] || fail_start "$name" "did not answer $url within ${limit} s"
    sleep 0.2
  done
}

wait_tcp() { # name port seconds
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; do
    alive "$1" || fail_start "$1" "exited before listening on 127.0.0.1:$2"
    [ $SECONDS -lt $deadline ] || fail_start "$1" "did not listen on 127.0.0.1:$2 within $3 s"
    sleep 0.2
  done
}

free_ports() { # count
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

pki() {
  local p="$dir/pki"
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=real-flux-ca" -keyout "$p/ca.key" -out "$p/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$p/apiserver.key" -out "$p/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > "$p/ext"
  openssl x509 -req -in "$p/apiserver.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial -days 30 \
    -extfile "$p/ext" -out "$p/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  token=$(openssl rand -hex 24)
  echo "$token,admin,admin,\"system:masters\"" > "$p/tokens.csv"
  chmod 600 "$p"/*.key "$p/tokens.csv"
}

write_kubeconfig() {
  local ca
  ca=$(base64 -w0 < "$dir/pki/ca.crt")
  umask 077
  local name=${kube_name:-real-flux}
  cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: $name
    cluster:
      server: https://127.0.0.1:$p_api
      certificate-authority-data: $ca
users:
  - name: admin-$name
    user:
      token: $token
contexts:
  - name: $name
    context:
      cluster: $name
      user: admin-$name
current-context: $name
EOF
  umask 022
}

start() {
  [ -n "${dir:-}" ] || die "usage: $0 start DIR"
  local cache
  cache=$(build)
  bin="$cache/bin"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for c in $components; do
    if alive "$c"; then die "$c is already running from $dir (scripts/real-flux.sh stop $dir first)"; fi
  done
  rm -rf "$dir/etcd" "$dir/storage" "$dir/logs" "$dir/pids" "$dir/pki"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/storage"
  echo "$bin" > "$dir/bin-path"
  local t0=$SECONDS
  read -r p_etcd p_peer p_api p_kcm p_sched p_kwok p_src p_src_m p_src_h p_kus_m p_kus_h p_helm_m p_helm_h \
    p_nc_ev p_nc_recv p_nc_m p_nc_h <<< "$(free_ports 17)"
  pki

  launch etcd --name real-flux --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$p_etcd" --advertise-client-urls "http://127.0.0.1:$p_etcd" \
    --listen-peer-urls "http://127.0.0.1:$p_peer" --initial-advertise-peer-urls "http://127.0.0.1:$p_peer" \
    --initial-cluster "real-flux=http://127.0.0.1:$p_peer" --unsafe-no-fsync --quota-backend-bytes 1073741824
  wait_http etcd "http://127.0.0.1:$p_etcd/health" 30

  launch kube-apiserver --etcd-servers "http://127.0.0.1:$p_etcd" --cert-dir "$dir/pki" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --secure-port "$p_api" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true --authorization-mode RBAC \
    --disable-admission-plugins ServiceAccount,TaintNodesByCondition --token-auth-file "$dir/pki/tokens.csv" \
    --service-account-issuer "https://127.0.0.1:$p_api/" --service-account-key-file "$dir/pki/sa.pub" \
    --service-account-signing-key-file "$dir/pki/sa.key" --endpoint-reconciler-type none
  wait_http kube-apiserver "https://127.0.0.1:$p_api/readyz" 90 --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token"
  write_kubeconfig
  export KUBECONFIG="$dir/kubeconfig"
  local kubectl="$bin/kubectl"

  # Every Flux CRD before any controller starts (they watch each other's kinds).
  "$kubectl" apply --server-side -f "$cache/crds" > "$dir/logs/crds.log" 2>&1 || { cat "$dir/logs/crds.log" >&2; stop_all; die "applying the CRDs failed"; }
  "$kubectl" create namespace flux-system > /dev/null
  "$kubectl" wait --for condition=established --timeout 60s crd --all > /dev/null

  launch kube-controller-manager --kubeconfig "$dir/kubeconfig" --leader-elect=false \
    --controllers namespace-controller,deployment-controller,replicaset-controller,garbage-collector-controller,serviceaccount-controller \
    --bind-address 127.0.0.1 --secure-port "$p_kcm" --authentication-skip-lookup=true
  launch kube-scheduler --kubeconfig "$dir/kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$p_sched" --authentication-skip-lookup=true
  launch kwok --kubeconfig "$dir/kubeconfig" --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$p_kwok" --cidr 10.1.0.1/16 --node-ip 127.0.0.1
  "$kubectl" apply -f - > /dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "250"}
  capacity: {cpu: "32", memory: 256Gi, pods: "250"}
EOF

  local events="http://127.0.0.1:$p_nc_ev/"
  export RUNTIME_NAMESPACE=flux-system
  launch source-controller --storage-path "$dir/storage" --storage-addr "127.0.0.1:$p_src" \
    --storage-adv-addr "127.0.0.1:$p_src" --metrics-addr "127.0.0.1:$p_src_m" --health-addr "127.0.0.1:$p_src_h" \
    --events-addr "$events" --log-level info
  launch kustomize-controller --metrics-addr "127.0.0.1:$p_kus_m" --health-addr "127.0.0.1:$p_kus_h" \
    --events-addr "$events" --log-level info
  launch helm-controller --metrics-addr "127.0.0.1:$p_helm_m" --health-addr "127.0.0.1:$p_helm_h" \
    --events-addr "$events" --log-level info
  launch notification-controller --events-addr "127.0.0.1:$p_nc_ev" --receiverAddr "127.0.0.1:$p_nc_recv" \
    --metrics-addr "127.0.0.1:$p_nc_m" --health-addr "127.0.0.1:$p_nc_h" --log-level info

  wait_http kube-controller-manager "https://127.0.0.1:$p_kcm/healthz" 60 -k
  wait_http kube-scheduler "https://127.0.0.1:$p_sched/healthz" 60 -k
  wait_http kwok "http://127.0.0.1:$p_kwok/healthz" 60
  wait_http source-controller "http://127.0.0.1:$p_src_h/readyz" 60
  wait_http kustomize-controller "http://127.0.0.1:$p_kus_h/readyz" 60
  wait_http helm-controller "http://127.0.0.1:$p_helm_h/readyz" 60
  wait_http notification-controller "http://127.0.0.1:$p_nc_h/readyz" 60
  # source-controller serves artifacts only once it runs its controllers.
  wait_tcp source-controller "$p_src" 60
  wait_tcp notification-controller "$p_nc_recv" 60
  # No node-lifecycle-controller runs, so the node must not get the not-ready taint at creation
  # (TaintNodesByCondition is disabled above); kwok reports it Ready.
  "$kubectl" wait --for condition=Ready --timeout 60s node/kwok-node-0 > /dev/null 2>&1 \
    || fail_start kwok "did not make node kwok-node-0 Ready"
  # The namespace controller is ready when it has given flux-system's default ServiceAccount.
  local deadline=$((SECONDS + 60))
  until "$kubectl" -n flux-system get serviceaccount default > /dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail_start kube-controller-manager "created no default ServiceAccount in 60 s"
    sleep 0.2
  done

  cat > "$dir/env" <<EOF
KUBECONFIG=$dir/kubeconfig
FLUX_RECEIVER_BASE=http://127.0.0.1:$p_nc_recv
FLUX_VERSION=$FLUX_VERSION
KUBERNETES_VERSION=$KUBERNETES_VERSION
KUBECTL=$kubectl
SOURCE_CONTROLLER_STORAGE=http://127.0.0.1:$p_src
EOF
  cat "$dir/env"
  say "started in $((SECONDS - t0)) s (logs in $dir/logs)"
}

# The stack's memory: each running component's peak RSS, and their sum (the budget is 3 GiB).
memory_report() {
  local c pid kb total=0 parts=""
  for c in $components; do
    alive "$c" || continue
    pid=$(cat "$dir/pids/$c.pid")
    kb=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + kb))
    parts="$parts $c=$((kb / 1024))"
  done
  [ "$total" -gt 0 ] || return 0
  echo "$total" > "$dir/peak-kb"
  say "peak memory $((total / 1024)) MiB in all (MiB:$parts)"
  [ "$total" -lt $((3 * 1024 * 1024)) ] || say "the stack used more than its 3 GiB budget"
}

stop_all() {
  local c pid failed=0
  memory_report
  for c in $components; do
    [ -f "$dir/pids/$c.pid" ] || continue
    pid=$(cat "$dir/pids/$c.pid")
    if alive "$c"; then
      kill -TERM "$pid" 2>/dev/null || true
    else
      say "$c had already exited"
      tail_log "$c"
      failed=1
      rm -f "$dir/pids/$c.pid"
    fi
  done
  for c in $components; do
    [ -f "$dir/pids/$c.pid" ] || continue
    local deadline=$((SECONDS + 15))
    while alive "$c" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    alive "$c" && kill -KILL "$(cat "$dir/pids/$c.pid")" 2>/dev/null
    rm -f "$dir/pids/$c.pid"
  done
  return $failed
}

stop() {
  [ -n "${dir:-}" ] && [ -d "$dir" ] || die "usage: $0 stop DIR (a directory given to start)"
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/bin-path" ] || die "$dir was not started by this script"
  bin=$(cat "$dir/bin-path")
  if [ -f "$dir/clusters" ]; then
    stop_many
    return
  fi
  stop_all || die "a component had failed before stop (log tail above)"
}

# `start DIR --clusters N`: N control planes, each with its own Flux controllers, in
# DIR/cluster-1 … DIR/cluster-N. DIR/kubeconfig has a context per cluster (cluster-1 current);
# DIR/env is cluster-1's, plus KUBE_CONTEXT_<i> and FLUX_RECEIVER_BASE_<i> for each.
start_many() {
  local n=$1 top i files=""
  [[ "$n" =~ ^[1-9]$ ]] || die "--clusters takes a number from 1 to 9"
  mkdir -p "$dir"
  top=$(cd "$dir" && pwd)
  rm -f "$top/clusters"
  for i in $(seq 1 "$n"); do
    if ! (dir="$top/cluster-$i" kube_name="cluster-$i" start > /dev/null); then
      dir=$top
      echo "$n" > "$top/clusters"
      stop_many || true
      die "cluster-$i did not start"
    fi
    files="$files${files:+:}$top/cluster-$i/kubeconfig"
  done
  echo "$n" > "$top/clusters"
  cp "$top/cluster-1/bin-path" "$top/bin-path"
  bin=$(cat "$top/bin-path")
  (umask 077; KUBECONFIG="$files" "$bin/kubectl" config view --flatten > "$top/kubeconfig")
  KUBECONFIG="$top/kubeconfig" "$bin/kubectl" config use-context cluster-1 > /dev/null
  {
    sed "s|^KUBECONFIG=.*|KUBECONFIG=$top/kubeconfig|" "$top/cluster-1/env"
    echo "CLUSTERS=$n"
    for i in $(seq 1 "$n"); do
      echo "KUBE_CONTEXT_$i=cluster-$i"
      sed -n "s|^FLUX_RECEIVER_BASE=|FLUX_RECEIVER_BASE_$i=|p; s|^SOURCE_CONTROLLER_STORAGE=|SOURCE_CONTROLLER_STORAGE_$i=|p" "$top/cluster-$i/env"
    done
  } > "$top/env"
  cat "$top/env"
  say "started $n clusters"
}

stop_many() {
  local top=$dir n i total=0 failed=0
  n=$(cat "$top/clusters")
  for i in $(seq 1 "$n"); do
    [ -f "$top/cluster-$i/bin-path" ] || continue
    (dir="$top/cluster-$i"; bin=$(cat "$dir/bin-path"); stop_all) || failed=1
    total=$((total + $(cat "$top/cluster-$i/peak-kb" 2>/dev/null || echo 0)))
  done
  say "peak memory of the $n clusters: $((total / 1024)) MiB in all"
  [ $failed = 0 ] || die "a component had failed before stop (log tail above)"
}

# One compound command, read whole before it runs: editing this file while it runs (a cold build
# takes minutes) cannot make bash read half a line afterwards.
{
  cmd=${1:-}
  dir=${2:-}
  case "$cmd" in
    start)
      case "${3:-}" in
        "") start ;;
        --clusters) start_many "${4:-}" ;;
        *) die "usage: $0 start DIR [--clusters N]" ;;
      esac ;;
    stop) stop ;;
    build) build ;;
    update-modules) update_modules ;;
    *) die "usage: $0 start DIR [--clusters N] | stop DIR | build | update-modules" ;;
  esac
  exit 0
}
