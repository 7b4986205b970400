#!/usr/bin/env bash
# Every test of cybs3: formatting, lints, unit and property tests, and the
# end-to-end suites that drive the release binary with real clients.
# Installs missing Debian packages first when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

# The programs the end-to-end tests use (installed when missing), one list for run.sh and coverage.sh.
source tests/deps.sh

# Each phase's start, in seconds since this script began, to see where CI time goes.
phase() { echo "== $* (at ${SECONDS} s)"; }

phase "format"
cargo fmt --all --check
phase "lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings
phase "dependencies (deny.toml: licenses, duplicate versions, crates.io only)"
# About 2 s. Advisories (`cargo deny check advisories`) need the RustSec advisory database,
# which is fetched from GitHub, and this network reaches only the package registries.
cargo deny --log-level error check licenses bans sources
phase "release build (the binary the end-to-end tests drive)"
cargo build --release --quiet
export CYBS3_BIN="$PWD/target/release/cybs3"
phase "tests (release profile: they reuse the build above instead of compiling everything again)"
cargo test --workspace --release --quiet -- --test-threads 2
phase "S3 command-line clients (aws, rclone, s3cmd)"
tests/clients.sh
phase "packages (.deb with cargo-deb, systemd units, Containerfile)"
if [[ $(id -u) -eq 0 ]]; then
  tests/packaging.sh
else
  echo "skipped: tests/packaging.sh installs a package and needs root"
fi
phase "kubernetes (chart and operator, validated offline)"
tests/k8s.sh
phase "all passed"
