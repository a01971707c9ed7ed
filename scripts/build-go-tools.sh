#!/usr/bin/env bash
# Build the Go binaries FleetPipe's tests need, pinned and cached:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kwok helm
#   jaeger coredns promql-check skaffold helm3
# into ${FLEETPIPE_CACHE:-$HOME/.cache/fleetpipe}/bin/, and take skaffold's JSON schema for the
# skaffold.yaml check (skaffold-schema) from its Go module into .../schemas/, and the Prometheus
# operator's ServiceMonitor and PrometheusRule CRDs (prometheus-operator-crds) from its Go module
# into .../crds/prometheus-operator/.
#
# Usage: scripts/build-go-tools.sh [TOOL...]   (default: all; "k8s" = the 6 k8s tools)
#        FLEETPIPE_FORCE=1 scripts/build-go-tools.sh   (ignore stamps, rebuild)
#
# Each binary has a stamp (bin/.stamps/TOOL) recording what it was built from;
# a tool whose binary and matching stamp exist is skipped, so a warm run is ~instant.
# Nothing is written into the repo: wrapper modules are built with -mod=readonly.
# GOCACHE / GOMODCACHE are the Go defaults (~/.cache/go-build, ~/go/pkg/mod).
set -euo pipefail

# ---- pinned versions -------------------------------------------------------
# Kubernetes: must match `require k8s.io/kubernetes` (and the v0.X.Y staging
# replaces) in tools/gobuild/k8s/go.mod.
K8S_VERSION=v1.37.1
K8S_COMMIT=f78e722310e50bcaca9276be22276d9e91d91308
K8S_BUILD_DATE=2026-09-23T17:06:22Z
# kwok (sigs.k8s.io/kwok), built with `go install ...@version`.
KWOK_VERSION=v0.8.0
# helm v4 (helm.sh/helm/v4), built with `go install ...@version`; v4 reads the Kubernetes
# version it reports from client-go's build info, so only its own version is set.
HELM_VERSION=v4.3.2
# Jaeger v2: release v2.12.0 == Go module github.com/jaegertracing/jaeger v1.75.0
# (same commit); must match tools/gobuild/jaeger/go.mod.
JAEGER_VERSION=v2.12.0
JAEGER_MODULE_VERSION=v1.75.0
JAEGER_COMMIT=1c5531b15d6a90c91a5a6cec94171ccc18ebd3ca
JAEGER_BUILD_DATE=2025-11-13T16:44:30Z
# skaffold: only its published JSON schema of the config version skaffold.yaml uses, read from
# the release's module zip (docs-v2/content/en/schemas/); must match API_VERSION in
# dev/fleetpipe_dev/devtools/skaffold.py.
# CoreDNS: the cluster DNS of `fleetpipe dev cluster`, built from a wrapper module that links
# only the plugins the Corefile uses; must match tools/gobuild/coredns/go.mod.
COREDNS_VERSION=v1.15.0
SKAFFOLD_VERSION=v2.16.1
SKAFFOLD_SCHEMA=v4beta13
# skaffold itself (`skaffold run -p fleetpipe-cluster`): its go.mod has `replace` directives, so
# `go install` is refused; tools/gobuild/skaffold/go.mod repeats them and must pin this version.
SKAFFOLD_COMMIT=95fb592deb61a4e290edca4925bd7c9c2fa93f6c
SKAFFOLD_BUILD_DATE=2025-06-18T03:34:25Z
# helm v3, for skaffold alone: skaffold v2.16 passes itself to helm as `--post-renderer PATH`,
# which helm v4 only accepts as a plugin name. `fleetpipe dev cluster skaffold` puts it first on
# skaffold's PATH as `helm`; everything else uses helm v4.
HELM3_VERSION=v3.21.4
# promql-check: Prometheus' PromQL parser (github.com/prometheus/prometheus/promql/parser) in a
# small wrapper module; must match tools/gobuild/promql/go.mod.
PROMETHEUS_MODULE_VERSION=v0.307.1
# The Prometheus operator's CRDs, read from its module zip (example/prometheus-operator-crd/).
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# ---------------------------------------------------------------------------

K8S_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
ALL_TOOLS=("${K8S_TOOLS[@]}" kwok helm jaeger coredns skaffold-schema skaffold helm3 promql-check prometheus-operator-crds)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FLEETPIPE_CACHE:-$HOME/.cache/fleetpipe}"
BIN="$CACHE/bin"
STAMPS="$BIN/.stamps"

if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    echo "build-go-tools: go not found (need Go >= 1.26)" >&2
    exit 1
  fi
fi

export CGO_ENABLED=0 GOWORK=off
# -buildvcs=false: the wrapper modules live in the repo's git checkout.
WRAPPER_GOFLAGS="-mod=readonly -buildvcs=false"

# ---- argument handling ----------------------------------------------------
want=()
if [[ $# -eq 0 ]]; then
  want=("${ALL_TOOLS[@]}")
else
  for a in "$@"; do
    case "$a" in
      all) want+=("${ALL_TOOLS[@]}") ;;
      k8s|kubernetes) want+=("${K8S_TOOLS[@]}") ;;
      kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet|kube-proxy|kwok|helm|jaeger|coredns|skaffold-schema|skaffold|helm3|promql-check|prometheus-operator-crds) want+=("$a") ;;
      -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) echo "build-go-tools: unknown tool '$a' (known: ${ALL_TOOLS[*]} k8s all)" >&2; exit 2 ;;
    esac
  done
fi
wanted() { local t; for t in "${want[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }

# ---- stamps ---------------------------------------------------------------
GO_VERSION="$(go env GOVERSION)"
K8S_MOD_SUM="$(cat "$ROOT/tools/gobuild/k8s/go.mod" "$ROOT/tools/gobuild/k8s/go.sum" | sha256sum | cut -c1-16)"
COREDNS_MOD_SUM="$(cat "$ROOT/tools/gobuild/coredns/go.mod" "$ROOT/tools/gobuild/coredns/go.sum" "$ROOT/tools/gobuild/coredns/main.go" | sha256sum | cut -c1-16)"
JAEGER_MOD_SUM="$(cat "$ROOT/tools/gobuild/jaeger/go.mod" "$ROOT/tools/gobuild/jaeger/go.sum" | sha256sum | cut -c1-16)"
SKAFFOLD_MOD_SUM="$(cat "$ROOT/tools/gobuild/skaffold/go.mod" "$ROOT/tools/gobuild/skaffold/go.sum" | sha256sum | cut -c1-16)"
PROMQL_MOD_SUM="$(cat "$ROOT/tools/gobuild/promql/go.mod" "$ROOT/tools/gobuild/promql/go.sum" "$ROOT/tools/gobuild/promql/main.go" | sha256sum | cut -c1-16)"
PROMOP_CRDS=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)

stamp_for() {
  case "$1" in
    kube-*|kubectl) echo "$1 $K8S_VERSION $K8S_COMMIT mod=$K8S_MOD_SUM $GO_VERSION" ;;
    kwok) echo "kwok $KWOK_VERSION $GO_VERSION" ;;
    helm) echo "helm $HELM_VERSION $GO_VERSION" ;;
    jaeger) echo "jaeger $JAEGER_VERSION ($JAEGER_MODULE_VERSION) $JAEGER_COMMIT mod=$JAEGER_MOD_SUM $GO_VERSION" ;;
    coredns) echo "coredns $COREDNS_VERSION mod=$COREDNS_MOD_SUM $GO_VERSION" ;;
    skaffold-schema) echo "skaffold-schema $SKAFFOLD_VERSION $SKAFFOLD_SCHEMA" ;;
    helm3) echo "helm3 $HELM3_VERSION $GO_VERSION" ;;
    skaffold) echo "skaffold $SKAFFOLD_VERSION $SKAFFOLD_COMMIT mod=$SKAFFOLD_MOD_SUM $GO_VERSION" ;;
    promql-check) echo "promql-check $PROMETHEUS_MODULE_VERSION mod=$PROMQL_MOD_SUM $GO_VERSION" ;;
    prometheus-operator-crds) echo "prometheus-operator-crds $PROMETHEUS_OPERATOR_VERSION" ;;
  esac
}
present() {
  case "$1" in
    skaffold-schema) [[ -f "$CACHE/schemas/skaffold-$SKAFFOLD_SCHEMA.json" ]] ;;
    prometheus-operator-crds)
      local f
      for f in "${PROMOP_CRDS[@]}"; do [[ -f "$CACHE/crds/prometheus-operator/$f" ]] || return 1; done ;;
    *) [[ -x "$BIN/$1" ]] ;;
  esac
}
is_fresh() {
  [[ -z ${FLEETPIPE_FORCE:-} && -f "$STAMPS/$1" ]] && present "$1" &&
    [[ "$(<"$STAMPS/$1")" == "$(stamp_for "$1")" ]]
}

mkdir -p "$BIN" "$STAMPS"
TMP="$(mktemp -d "$CACHE/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# Move freshly built binaries from $TMP into $BIN and write their stamps.
install_built() {
  local t
  for t in "$@"; do
    mv -f "$TMP/$t" "$BIN/$t"
    stamp_for "$t" > "$STAMPS/$t"
  done
}

check_pin() { # file, expected line regex, description
  if ! grep -Eq "$2" "$ROOT/$1"; then
    echo "build-go-tools: $1 does not pin $3; update the script variables or the go.mod" >&2
    exit 1
  fi
}

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

# ---- kubernetes (one go build for all requested k8s tools) ----------------
k8s_todo=()
for t in "${K8S_TOOLS[@]}"; do
  wanted "$t" || continue
  if is_fresh "$t"; then echo "$t $K8S_VERSION: ok (cached)"; else k8s_todo+=("$t"); fi
done
if [[ ${#k8s_todo[@]} -gt 0 ]]; then
  check_pin tools/gobuild/k8s/go.mod "^require k8s.io/kubernetes $K8S_VERSION\$|^[[:space:]]k8s.io/kubernetes $K8S_VERSION\$" "k8s.io/kubernetes $K8S_VERSION"
  ver="${K8S_VERSION#v}"; major="${ver%%.*}"; rest="${ver#*.}"; minor="${rest%%.*}"
  ldflags="-s -w"
  # same variables as kubernetes' hack/lib/version.sh (kube::version::ldflags)
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=$K8S_COMMIT -X $pkg.gitTreeState=clean -X $pkg.buildDate=$K8S_BUILD_DATE"
  done
  pkgs=()
  for t in "${k8s_todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$t"); done
  echo "building ${k8s_todo[*]} $K8S_VERSION …"
  start=$(date +%s)
  (cd "$ROOT/tools/gobuild/k8s" &&
    GOFLAGS="$WRAPPER_GOFLAGS" go build -trimpath -ldflags "$ldflags" -o "$TMP/" "${pkgs[@]}")
  install_built "${k8s_todo[@]}"
  echo "  ok ($(elapsed "$start"))"
fi

# ---- kwok -----------------------------------------------------------------
if wanted kwok; then
  if is_fresh kwok; then
    echo "kwok $KWOK_VERSION: ok (cached)"
  else
    echo "building kwok $KWOK_VERSION …"
    start=$(date +%s)
    # same variable as kwok's hack/releases.sh; KubeVersion/prefixes keep upstream defaults
    (cd "$TMP" && GOFLAGS= GOBIN="$TMP" go install -trimpath \
      -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
      "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
    install_built kwok
    echo "  ok ($(elapsed "$start"))"
  fi
fi

# ---- helm -----------------------------------------------------------------
if wanted helm; then
  if is_fresh helm; then
    echo "helm $HELM_VERSION: ok (cached)"
  else
    echo "building helm $HELM_VERSION …"
    start=$(date +%s)
    # same variables as helm's Makefile (LDFLAGS) for a tagged build
    hv=helm.sh/helm/v4/internal/version
    (cd "$TMP" && GOFLAGS= GOBIN="$TMP" go install -trimpath \
      -ldflags "-s -w -X $hv.version=$HELM_VERSION -X $hv.metadata= -X $hv.gitTreeState=clean" \
      "helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
    install_built helm
    echo "  ok ($(elapsed "$start"))"
  fi
fi

# ---- jaeger ---------------------------------------------------------------
if wanted jaeger; then
  if is_fresh jaeger; then
    echo "jaeger $JAEGER_VERSION: ok (cached)"
  else
    check_pin tools/gobuild/jaeger/go.mod "^require github.com/jaegertracing/jaeger $JAEGER_MODULE_VERSION\$" "github.com/jaegertracing/jaeger $JAEGER_MODULE_VERSION"
    echo "building jaeger $JAEGER_VERSION (module $JAEGER_MODULE_VERSION) …"
    start=$(date +%s)
    # same variables as jaeger's scripts/makefiles/BuildInfo.mk (BUILD_INFO_V2)
    jv=github.com/jaegertracing/jaeger/internal/version
    (cd "$ROOT/tools/gobuild/jaeger" &&
      GOFLAGS="$WRAPPER_GOFLAGS" go build -trimpath \
        -ldflags "-s -w -X $jv.commitSHA=$JAEGER_COMMIT -X $jv.latestVersion=$JAEGER_VERSION -X $jv.date=$JAEGER_BUILD_DATE" \
        -o "$TMP/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
    install_built jaeger
    echo "  ok ($(elapsed "$start"))"
  fi
fi

# ---- coredns --------------------------------------------------------------
if wanted coredns; then
  if is_fresh coredns; then
    echo "coredns $COREDNS_VERSION: ok (cached)"
  else
    check_pin tools/gobuild/coredns/go.mod "^require github.com/coredns/coredns $COREDNS_VERSION\$" "github.com/coredns/coredns $COREDNS_VERSION"
    echo "building coredns $COREDNS_VERSION …"
    start=$(date +%s)
    (cd "$ROOT/tools/gobuild/coredns" &&
      GOFLAGS="$WRAPPER_GOFLAGS" go build -trimpath \
        -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
        -o "$TMP/coredns" .)
    install_built coredns
    echo "  ok ($(elapsed "$start"))"
  fi
fi

# ---- skaffold's config schema ---------------------------------------------
if wanted skaffold-schema; then
  if is_fresh skaffold-schema; then
    echo "skaffold schema $SKAFFOLD_SCHEMA ($SKAFFOLD_VERSION): ok (cached)"
  else
    echo "fetching skaffold schema $SKAFFOLD_SCHEMA ($SKAFFOLD_VERSION) …"
    # The module zip is read from the Go module cache; nothing is built.
    dir="$(cd "$TMP" && GOFLAGS= go mod download -json "github.com/GoogleContainerTools/skaffold/v2@$SKAFFOLD_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    src="$dir/docs-v2/content/en/schemas/$SKAFFOLD_SCHEMA.json"
    if [[ ! -f $src ]]; then
      echo "build-go-tools: $src not found in skaffold $SKAFFOLD_VERSION" >&2
      exit 1
    fi
    mkdir -p "$CACHE/schemas"
    cp "$src" "$CACHE/schemas/skaffold-$SKAFFOLD_SCHEMA.json"
    chmod 644 "$CACHE/schemas/skaffold-$SKAFFOLD_SCHEMA.json"
    stamp_for skaffold-schema > "$STAMPS/skaffold-schema"
    echo "  ok"
  fi
fi

# ---- skaffold -------------------------------------------------------------
if wanted skaffold; then
  if is_fresh skaffold; then
    echo "skaffold $SKAFFOLD_VERSION: ok (cached)"
  else
    check_pin tools/gobuild/skaffold/go.mod "^require github.com/GoogleContainerTools/skaffold/v2 $SKAFFOLD_VERSION\$" "github.com/GoogleContainerTools/skaffold/v2 $SKAFFOLD_VERSION"
    echo "building skaffold $SKAFFOLD_VERSION …"
    start=$(date +%s)
    # same variables and tags as skaffold's Makefile for a linux release build (cgo off: static)
    sv=github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version
    (cd "$ROOT/tools/gobuild/skaffold" &&
      GOFLAGS="$WRAPPER_GOFLAGS" go build -trimpath -tags "timetzdata osusergo netgo release" \
        -ldflags "-s -w -X $sv.version=$SKAFFOLD_VERSION -X $sv.gitCommit=$SKAFFOLD_COMMIT -X $sv.buildDate=$SKAFFOLD_BUILD_DATE" \
        -o "$TMP/skaffold" github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold)
    install_built skaffold
    echo "  ok ($(elapsed "$start"))"
  fi
fi

# ---- helm v3 (skaffold's) ---------------------------------------------------
if wanted helm3; then
  if is_fresh helm3; then
    echo "helm3 $HELM3_VERSION: ok (cached)"
  else
    echo "building helm $HELM3_VERSION (as helm3) …"
    start=$(date +%s)
    # same variables as helm v3's Makefile (LDFLAGS) for a tagged build
    hv=helm.sh/helm/v3/internal/version
    mkdir -p "$TMP/helm3-bin"
    (cd "$TMP" && GOFLAGS= GOBIN="$TMP/helm3-bin" go install -trimpath \
      -ldflags "-s -w -X $hv.version=$HELM3_VERSION -X $hv.metadata= -X $hv.gitTreeState=clean" \
      "helm.sh/helm/v3/cmd/helm@$HELM3_VERSION")
    mv "$TMP/helm3-bin/helm" "$TMP/helm3"
    install_built helm3
    echo "  ok ($(elapsed "$start"))"
  fi
fi

# ---- promql-check ---------------------------------------------------------
if wanted promql-check; then
  if is_fresh promql-check; then
    echo "promql-check ($PROMETHEUS_MODULE_VERSION): ok (cached)"
  else
    check_pin tools/gobuild/promql/go.mod "^require github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION\$|^[[:space:]]github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION\$" "github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION"
    echo "building promql-check (prometheus $PROMETHEUS_MODULE_VERSION) …"
    start=$(date +%s)
    (cd "$ROOT/tools/gobuild/promql" &&
      GOFLAGS="$WRAPPER_GOFLAGS" go build -trimpath -ldflags "-s -w" -o "$TMP/promql-check" .)
    install_built promql-check
    echo "  ok ($(elapsed "$start"))"
  fi
fi

# ---- the Prometheus operator's CRDs ---------------------------------------
if wanted prometheus-operator-crds; then
  if is_fresh prometheus-operator-crds; then
    echo "prometheus-operator CRDs ($PROMETHEUS_OPERATOR_VERSION): ok (cached)"
  else
    echo "fetching the prometheus-operator CRDs ($PROMETHEUS_OPERATOR_VERSION) …"
    # The module zip is read from the Go module cache; nothing is built.
    dir="$(cd "$TMP" && GOFLAGS= go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    mkdir -p "$CACHE/crds/prometheus-operator"
    for f in "${PROMOP_CRDS[@]}"; do
      src="$dir/example/prometheus-operator-crd/$f"
      if [[ ! -f $src ]]; then
        echo "build-go-tools: $src not found in prometheus-operator $PROMETHEUS_OPERATOR_VERSION" >&2
        exit 1
      fi
      cp "$src" "$CACHE/crds/prometheus-operator/$f"
      chmod 644 "$CACHE/crds/prometheus-operator/$f"
    done
    stamp_for prometheus-operator-crds > "$STAMPS/prometheus-operator-crds"
    echo "  ok"
  fi
fi
