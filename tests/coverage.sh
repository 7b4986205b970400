#!/usr/bin/env bash
# Line and function coverage of the workspace, unit and end-to-end tests together (issue 29).
# On demand only: CI (.ci/run → tests/run.sh) does not run it; the full suite takes longer
# instrumented than the CI budget allows.
#
# Tool: cargo-llvm-cov (rustc's -C instrument-coverage) with Debian's llvm-22, whose
# llvm-profdata reads the profiles rustc 1.95 (LLVM 22) writes; no rustup component needed.
# docs/COVERAGE.md says why this and not cargo-tarpaulin, and has the last numbers.
#
# Usage:
#   tests/coverage.sh              every test: `cargo test --workspace`, then tests/clients.sh
#   tests/coverage.sh T1 T2 …      partial: every crate's own tests (all but the end-to-end
#                                  crate cybs3-tests), then only the end-to-end test targets
#                                  T1 T2 … of tests/tests/ (e.g. `s3_api s3_negative`)
#   COVERAGE_CRATES="cybs3-engine cybs3-vault" tests/coverage.sh T1 …
#                                  partial, with only these packages' own tests
#                                  (COVERAGE_CRATES= : none, the end-to-end targets alone)
#
# The end-to-end tests drive $CYBS3_BIN, set here to the instrumented release build; every
# process of it writes its counters to $LLVM_PROFILE_FILE (%p, %m: one file per process
# signature, merged) when it exits. A process killed by SIGKILL writes nothing: tests that
# SIGKILL a server on purpose (crash recovery) lose that server's share; a dropped test
# Server gets SIGTERM first while LLVM_PROFILE_FILE is set (tests/src/lib.rs).
#
# Output, under $CARGO_TARGET_DIR (default target/): llvm-cov-target/ (the instrumented build
# and the .profraw files), coverage/html/index.html, coverage/summary.json (llvm-cov's
# per-file summary) and coverage/summary.md (per crate and per module, see
# tests/coverage_summary.py). Exits non-zero when a test failed, after writing the report.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The programs the end-to-end tests use, as tests/run.sh installs them.
source tests/deps.sh

# rustc's LLVM major must match the llvm-cov/llvm-profdata that read its profiles.
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
llvm=/usr/lib/llvm-$llvm_major/bin
if [[ ! -x $llvm/llvm-profdata ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing package: llvm-$llvm_major (run as root to install it)" >&2
    exit 1
  fi
  echo "installing: llvm-$llvm_major"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm_major"
fi
# Set before any cargo llvm-cov command: without them it runs `rustup component add
# llvm-tools` on its own, a toolchain component this project does without.
export LLVM_COV=$llvm/llvm-cov LLVM_PROFDATA=$llvm/llvm-profdata

# 0.9.1 is the last version checked on rust 1.95 (needs 1.87).
llvm_cov_version=0.9.1
if ! cargo llvm-cov --version 2>/dev/null | grep -qF "$llvm_cov_version"; then
  echo "installing: cargo-llvm-cov $llvm_cov_version"
  cargo install cargo-llvm-cov --version "$llvm_cov_version" --locked
fi

# The instrumented build has a target directory of its own, so the plain release build
# (and tests/run.sh) is left as it is.
base=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR=$base/llvm-cov-target
out=$base/coverage
# RUSTC_WRAPPER (instruments the workspace's crates only), LLVM_PROFILE_FILE and the
# target directory the report reads.
source <(cargo llvm-cov show-env --sh --release 2>/dev/null)
mkdir -p "$CARGO_TARGET_DIR"
rm -f "$CARGO_TARGET_DIR"/*.profraw

unset AWS_CA_BUNDLE
phase() { echo "== $* (at ${SECONDS} s)"; }

phase "instrumented release build"
cargo build --release --quiet
export CYBS3_BIN=$CARGO_TARGET_DIR/release/cybs3

status=0
if (($#)); then
  if [[ -z ${COVERAGE_CRATES+set} ]]; then
    phase "every crate's own tests (all but the end-to-end crate)"
    cargo test --workspace --exclude cybs3-tests --release --quiet --no-fail-fast \
      -- --test-threads 2 || status=1
  elif [[ -n $COVERAGE_CRATES ]]; then
    crate_args=()
    for p in $COVERAGE_CRATES; do crate_args+=(-p "$p"); done
    phase "own tests of $COVERAGE_CRATES"
    cargo test "${crate_args[@]}" --release --quiet --no-fail-fast -- --test-threads 2 || status=1
  fi
  targets=()
  for t in "$@"; do targets+=(--test "$t"); done
  phase "end-to-end tests: $*"
  cargo test -p cybs3-tests --release --quiet --no-fail-fast "${targets[@]}" \
    -- --test-threads 2 || status=1
else
  phase "every test of the workspace"
  cargo test --workspace --release --quiet --no-fail-fast -- --test-threads 2 || status=1
  phase "S3 command-line clients (aws, rclone, s3cmd)"
  tests/clients.sh || status=1
fi

phase "report"
# Test code is not what is measured: the end-to-end crate, its fixtures, each crate's
# tests/ and fs's test module directory.
ignore="^$root/(tests|fixtures|[^/]+/tests|fs/src/tests)/"
mkdir -p "$out"
cargo llvm-cov report --release --ignore-filename-regex "$ignore" --html --output-dir "$out"
cargo llvm-cov report --release --ignore-filename-regex "$ignore" --json --summary-only \
  --output-path "$out/summary.json"
python3 tests/coverage_summary.py "$out/summary.json" "$root" >"$out/summary.md"
sed -n '/^### Per crate/,/^| \*\*total/p' "$out/summary.md"
echo "HTML report: $out/html/index.html; per module: $out/summary.md"
phase "done (tests $( ((status)) && echo failed || echo passed))"
exit "$status"
