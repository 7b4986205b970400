#!/usr/bin/env bash
# The .deb end to end (run as root): built with cargo-deb (packaging/build-deb.sh),
# installed with dpkg, its files and user checked, both systemd units verified with
# systemd-analyze, then the server started from the unit's own ExecStart line as the
# cybs3 user (CI has no running systemd, so this script plays its part), used through
# the aws CLI, stopped with the unit's ExecStop line, and the package removed again.
# The Containerfile is linted (hadolint) and its ENTRYPOINT run as a plain user.
# Prints "N passed, N failed" last and exits non-zero when anything failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[[ $(id -u) -eq 0 ]] || { echo "tests/packaging.sh installs a package: run it as root" >&2; exit 1; }
unset AWS_CA_BUNDLE http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

work="$(mktemp -d)"
passed=0
failed=0
server=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null
  dpkg -r cybs3 >/dev/null 2>&1
  rm -rf "$work" /var/lib/cybs3
}
trap cleanup EXIT

check() {
  local what=$1
  shift
  if "$@" >"$work/last.log" 2>&1; then
    passed=$((passed + 1))
    echo "ok    $what"
  else
    failed=$((failed + 1))
    echo "FAIL  $what"
    sed 's/^/      /' "$work/last.log" | tail -20
  fi
}

deb=$(bash "$root/packaging/build-deb.sh" | tail -1)
check "the .deb is built" test -f "$deb"
check "dpkg -i installs it" dpkg -i "$deb"
check "the binary is on PATH and runs" /usr/bin/cybs3 --help
check "man pages" test -f /usr/share/man/man1/cybs3.1.gz -a -f /usr/share/man/man1/cybs3-server-start.1.gz
check "man renders" sh -c 'zcat /usr/share/man/man1/cybs3-admin-pool-add.1.gz | grep -q "pool of empty drives"'
check "bash completion" grep -q _cybs3 /usr/share/bash-completion/completions/cybs3
check "zsh and fish completions" test -s /usr/share/zsh/vendor-completions/_cybs3 -a -s /usr/share/fish/vendor_completions.d/cybs3.fish
check "default config is a conffile" sh -c 'dpkg-query -W -f="\${Conffiles}" cybs3 | grep -q /etc/cybs3/server.toml'
check "the cybs3 system user" sh -c 'getent passwd cybs3 | grep -q /var/lib/cybs3'
check "its private state directory" sh -c '[ "$(stat -c %U:%a /var/lib/cybs3)" = cybs3:700 ]'
unit=/usr/lib/systemd/system/cybs3.service
user_unit=/usr/lib/systemd/user/cybs3-mount@.service
check "systemd-analyze verify cybs3.service" systemd-analyze verify "$unit"
# A template is verified through an instance of it.
cp "$user_unit" "$work/cybs3-mount@photos.service"
check "systemd-analyze verify cybs3-mount@.service" systemd-analyze verify "$work/cybs3-mount@photos.service"
check "the unit is hardened" sh -c "grep -q '^NoNewPrivileges=yes' $unit && grep -q '^ProtectSystem=strict' $unit && grep -q '^Restart=on-failure' $unit"

# Whether a server on 127.0.0.1:PORT becomes ready within 10 s.
answers() {
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$1/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# The unit's command lines, with the environment systemd would give them.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
line() { sed -n "s/^$1=//p" "$unit" | head -1; }
start=$(line ExecStart)
stop=$(line ExecStop)
CYBS3_OPTS="--listen 127.0.0.1:$port"
start=${start//\$CYBS3_OPTS/$CYBS3_OPTS}
as_cybs3() { setpriv --reuid=cybs3 --regid=cybs3 --init-groups env -i PATH=/usr/bin:/bin CYBS3_HOME=/var/lib/cybs3 "$@"; }
# shellcheck disable=SC2086 # the unit's line, split into words as systemd does
as_cybs3 $start >"$work/server.log" 2>&1 &
server=$!
check "the server starts from ExecStart as cybs3 and answers" answers "$port"
# shellcheck disable=SC2086
status=$(as_cybs3 /usr/bin/cybs3 server status --data /var/lib/cybs3/store --json 2>/dev/null || true)
export AWS_ACCESS_KEY_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["root_access_key"])' <<<"$status" 2>/dev/null)
export AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["root_secret_key"])' <<<"$status" 2>/dev/null)
export AWS_DEFAULT_REGION=us-east-1
s3() { aws --endpoint-url "http://127.0.0.1:$port" s3 "$@"; }
head -c 300000 /dev/urandom >"$work/object"
check "aws s3 mb" s3 mb s3://packaged
check "aws s3 cp up" s3 cp "$work/object" s3://packaged/object
check "aws s3 cp down, byte for byte" sh -c "aws --endpoint-url http://127.0.0.1:$port s3 cp s3://packaged/object $work/back && cmp $work/object $work/back"
check "the store is the service user's, private" sh -c '[ "$(stat -c %U:%a /var/lib/cybs3/store)" = cybs3:700 ]'
# shellcheck disable=SC2086
check "ExecStop stops it" as_cybs3 $stop
code=1
if [[ -n $server ]]; then
  wait "$server"
  code=$?
  server=""
fi
check "the server exits cleanly (status 0)" test "$code" -eq 0
# The container image's command line (docker cannot pull base images here: the file is
# linted, and its ENTRYPOINT run as a plain user with /data in a scratch directory).
check "hadolint: the Containerfile" hadolint "$root/packaging/Containerfile"
data="$work/data"
chmod 755 "$work"
mkdir -p "$data" && chown nobody "$data"
entry=$(python3 -c 'import json, re, sys
line = [l for l in open(sys.argv[1]) if l.startswith("ENTRYPOINT")][0]
print(" ".join(json.loads(line[len("ENTRYPOINT"):])))' "$root/packaging/Containerfile")
cport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
entry=${entry//\/data/$data}
entry=${entry//0.0.0.0:9000/127.0.0.1:$cport}
# shellcheck disable=SC2086
setpriv --reuid=nobody --regid=nogroup --clear-groups env -i PATH=/usr/bin:/bin CYBS3_HOME="$data" $entry >"$work/container.log" 2>&1 &
server=$!
check "the image's ENTRYPOINT serves, as a non-root user" answers "$cport"
kill -TERM "$server" 2>/dev/null
wait "$server"
code=$?
server=""
check "and stops on SIGTERM (docker stop)" test "$code" -eq 0
check "dpkg -r removes it" dpkg -r cybs3
check "the binary is gone" test ! -e /usr/bin/cybs3

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
