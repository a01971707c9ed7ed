#!/usr/bin/env bash
# Installs what FleetPipe's demo or tests need, idempotently:
#   system packages (Debian): PostgreSQL 15, Maven, a JDK, Mosquitto; for the tests also etcd,
#   kcat, Chromium with its driver (the console's page), Prometheus (the console's health read
#   through its HTTP API) and what the image build and the local
#   cluster use (docker.io, debootstrap, containernetworking-plugins)
#   the Python environment in .venv (or $FLEETPIPE_VENV): fleetpipe and fleetpipe-dev, editable
#   Kafka's jars from Maven Central, cached in ~/.cache/fleetpipe
#   for the tests: the Go-built binaries (Kubernetes, kwok, helm, Jaeger), cached there too, and
#   an S3-compatible server (moto, from PyPI) in its own environment there
# The demo needs no Go build (`scripts/setup.sh demo`); `scripts/setup.sh` (or `test`) installs
# everything. A second run with everything present takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

want_go_tools=1
want_test_packages=1
for arg in "$@"; do
  case "$arg" in
    demo) want_go_tools=0; want_test_packages=0 ;;
    test) ;;
    --no-go-tools) want_go_tools=0 ;;
    -h|--help) echo "usage: scripts/setup.sh [demo|test] [--no-go-tools]"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- system packages ---------------------------------------------------------------------------
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql-15)
if ((want_test_packages)); then
  have etcd || missing+=(etcd-server)
  have kcat || missing+=(kcat)
  # The console's page is tested in Debian's headless Chromium, driven by Selenium.
  have chromium || missing+=(chromium)
  have chromedriver || missing+=(chromium-driver)
  # The console's health page read through a real Prometheus's HTTP API.
  have prometheus || missing+=(prometheus)
  # `make image` and `fleetpipe dev cluster`: Debian's Docker engine (it brings containerd and
  # runc), debootstrap for a base image without a registry, the CNI plugins, iptables for
  # kube-proxy and a C compiler for the pod sandbox's pause binary.
  have dockerd || missing+=(docker.io)
  have debootstrap || missing+=(debootstrap)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  have iptables || missing+=(iptables)
  have gcc || missing+=(gcc libc6-dev)
fi
have mvn || missing+=(maven)
have java || missing+=(openjdk-17-jre-headless)
have openssl || missing+=(openssl)
# The MQTT broker devices publish to: the demo's `--protocol mqtt` and the tests use it.
[ -x /usr/sbin/mosquitto ] || have mosquitto || missing+=(mosquitto)
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # The packaged PostgreSQL cluster is not used (tests make throw-away clusters): skip creating it.
  $sudo mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.d/fleetpipe.conf >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages present"
fi

# --- Python ------------------------------------------------------------------------------------
venv="${FLEETPIPE_VENV:-.venv}"
python="${PYTHON:-python3.11}"
have "$python" || python=python3
# The demo needs the two distributions; the tests add the dev extras (pytest, mypy, ruff, the
# protobuf compiler, ...). A stamp per flavour records what the environment was built from.
if ((want_test_packages)); then flavour=test; target='.[dev]'; else flavour=demo; target='.'; fi
hash_now=$(cat pyproject.toml dev/pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-16)
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$python" -m venv "$venv"
fi
installed() { [ -f "$venv/.fleetpipe-installed-$1" ] && [ "$(cat "$venv/.fleetpipe-installed-$1")" == "$hash_now" ]; }
if installed "$flavour" || { [ "$flavour" == demo ] && installed test; }; then
  say "Python packages present"
else
  say "installing Python packages into $venv ($flavour)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # fleetpipe-dev (dev/) adds the local stack, the demo, the benchmarks and the test helpers.
  "$venv/bin/python" -m pip install -q -c requirements/constraints.txt -e "$target" -e ./dev
  echo "$hash_now" > "$venv/.fleetpipe-installed-$flavour"
fi

# --- the S3-compatible server of the lake's tests (moto), in its own environment ---------------
if ((want_test_packages)); then
  moto_env="${FLEETPIPE_CACHE:-$HOME/.cache/fleetpipe}/moto"
  moto_hash=$(sha256sum requirements/moto-server.txt | cut -c1-16)
  if [ -x "$moto_env/bin/moto_server" ] && [ "$(cat "$moto_env/.installed" 2>/dev/null)" == "$moto_hash" ]; then
    say "S3-compatible test server present"
  else
    say "installing the S3-compatible test server (moto) into $moto_env"
    "$python" -m venv "$moto_env"
    "$moto_env/bin/python" -m pip install -q -r requirements/moto-server.txt
    echo "$moto_hash" > "$moto_env/.installed"
  fi
fi

# --- Kafka's jars ------------------------------------------------------------------------------
say "Kafka broker jars (Maven Central, cached)"
"$venv/bin/fleetpipe" dev install

# --- Go-built binaries -------------------------------------------------------------------------
if ((want_go_tools)) && [ -x scripts/build-go-tools.sh ]; then
  say "Go-built binaries (Go module proxy, cached)"
  scripts/build-go-tools.sh
fi
say "setup complete"
