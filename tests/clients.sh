#!/usr/bin/env bash
# The three common S3 command-line clients (aws CLI, rclone, s3cmd) against a fresh
# cybs3 server started here: make a bucket, upload a tree (nested dirs, spaces, unicode,
# an empty file, a 20 MiB file that goes multipart), list it, download it into a fresh
# directory, compare byte for byte, remove objects and bucket. Then all of it again over
# HTTPS, against a second server with a `cybs3 server cert` certificate, each client
# trusting its CA (aws --ca-bundle, rclone --ca-cert, s3cmd --ssl --ca-certs).
#
# Uses $CYBS3_BIN (else target/release/cybs3, else target/debug/cybs3). Prints
# "N passed, N failed" last and exits non-zero when anything failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

bin="${CYBS3_BIN:-}"
if [[ -z $bin ]]; then
  for p in "$root/target/release/cybs3" "$root/target/debug/cybs3"; do
    [[ -x $p ]] && { bin=$p; break; }
  done
fi
[[ -n $bin && -x $bin ]] || { echo "no cybs3 binary: set CYBS3_BIN or build it" >&2; exit 1; }

# Loopback only: a CA bundle or proxy meant for the outside only confuses clients.
unset AWS_CA_BUNDLE http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

work="$(mktemp -d)"
export CYBS3_HOME="$work/home"
passed=0
failed=0

cleanup() {
  "$bin" server stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# check DESCRIPTION COMMAND...: runs the command, counts and reports the outcome.
check() {
  local what=$1
  shift
  local log="$work/last.log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "ok    $what"
  else
    failed=$((failed + 1))
    echo "FAIL  $what"
    sed 's/^/      /' "$log" | tail -n 25
  fi
}

# json_field FIELD: FIELD of the JSON document on stdin.
json_field() {
  python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# start_server DIR: a 3-drive server under DIR (in $CYBS3_HOME's store, which may hold a
# certificate); sets port, endpoint and the root keys.
start_server() {
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  mkdir -p "$1/d0" "$1/d1" "$1/d2"
  if ! "$bin" server start --detach --listen "127.0.0.1:$port" --drives "$1/d0,$1/d1,$1/d2" \
    >"$work/start.log" 2>&1; then
    cat "$work/start.log" >&2
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
  fi
  local status
  status="$("$bin" server status --json)"
  endpoint="$(json_field endpoint <<<"$status")"
  access_key="$(json_field root_access_key <<<"$status")"
  secret_key="$(json_field root_secret_key <<<"$status")"
}

# The CA the clients trust in the HTTPS round; empty in the plain one.
ca=""
start_server "$work"

# The tree every client uploads.
src="$work/src"
mkdir -p "$src/a/b/c" "$src/dir with spaces/sub dir" "$src/ünïcødé"
echo "top" >"$src/top.txt"
echo "deep" >"$src/a/b/c/deep.txt"
printf 'line one\nline two\n' >"$src/a/b/notes.md"
echo "spaced" >"$src/dir with spaces/file with spaces.txt"
head -c 3000 /dev/urandom >"$src/dir with spaces/sub dir/random.bin"
echo "unicode" >"$src/ünïcødé/naïve café.txt"
: >"$src/empty.txt"
: >"$src/a/empty-too"
head -c $((20 * 1024 * 1024 + 13)) /dev/urandom >"$src/big.bin"
n_files="$(find "$src" -type f | wc -l)"

# count_is N COMMAND...: the command's output has exactly N non-empty lines.
count_is() {
  local want=$1
  shift
  local got
  got="$("$@" | grep -c .)"
  [[ $got -eq $want ]] || { echo "expected $want entries, got $got"; "$@"; return 1; }
}

# ---------------------------------------------------------------- aws CLI
run_aws() {
  local b=cli-aws down="$work/down-aws"
  export AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key"
  export AWS_DEFAULT_REGION=us-east-1 AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials"
  export AWS_CONFIG_FILE="$work/aws-config"
  unset AWS_PROFILE
  printf '[default]\ns3 =\n    addressing_style = path\n    multipart_threshold = 8MB\n    multipart_chunksize = 8MB\n' \
    >"$AWS_CONFIG_FILE"
  : >"$AWS_SHARED_CREDENTIALS_FILE"
  local tls=()
  [[ -n $ca ]] && tls=(--ca-bundle "$ca")
  local aws=(aws --endpoint-url "$endpoint" "${tls[@]}")
  check "aws: mb" "${aws[@]}" s3 mb "s3://$b"
  check "aws: cp --recursive up" "${aws[@]}" s3 cp --recursive --only-show-errors "$src" "s3://$b/tree/"
  check "aws: ls --recursive lists every file" count_is "$n_files" "${aws[@]}" s3 ls --recursive "s3://$b/"
  check "aws: big.bin went multipart (ETag has -N)" \
    bash -c '"$@" s3api head-object --bucket '"$b"' --key tree/big.bin | grep -q "ETag.*-[0-9]"' _ "${aws[@]}"
  check "aws: head-object of a name with spaces" \
    "${aws[@]}" s3api head-object --bucket "$b" --key "tree/dir with spaces/file with spaces.txt"
  check "aws: sync down" "${aws[@]}" s3 sync --only-show-errors "s3://$b/tree/" "$down"
  check "aws: downloaded tree is identical" diff -r "$src" "$down"
  check "aws: sync again transfers nothing" \
    bash -c '[[ -z $("$@" s3 sync "s3://'"$b"'/tree/" "'"$down"'") ]]' _ "${aws[@]}"
  check "aws: rm --recursive" "${aws[@]}" s3 rm --recursive --only-show-errors "s3://$b/"
  check "aws: bucket is empty" count_is 0 "${aws[@]}" s3 ls --recursive "s3://$b/"
  check "aws: rb" "${aws[@]}" s3 rb "s3://$b"
  check "aws: bucket is gone" bash -c '! "$@" s3api head-bucket --bucket '"$b" _ "${aws[@]}"
}

# ---------------------------------------------------------------- rclone
run_rclone() {
  local b=cli-rclone down="$work/down-rclone"
  : >"$work/rclone.conf"
  local tls=()
  [[ -n $ca ]] && tls=(--ca-cert "$ca")
  local rc=(env -u AWS_CA_BUNDLE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY
    RCLONE_CONFIG="$work/rclone.conf"
    RCLONE_CONFIG_C_TYPE=s3 RCLONE_CONFIG_C_PROVIDER=Other
    RCLONE_CONFIG_C_ENDPOINT="$endpoint" RCLONE_CONFIG_C_REGION=us-east-1
    RCLONE_CONFIG_C_ACCESS_KEY_ID="$access_key" RCLONE_CONFIG_C_SECRET_ACCESS_KEY="$secret_key"
    RCLONE_CONFIG_C_FORCE_PATH_STYLE=true
    rclone --retries 1 --low-level-retries 1 "${tls[@]}")
  check "rclone: mkdir (bucket)" "${rc[@]}" mkdir "c:$b"
  check "rclone: copy up (multipart above 5 MiB)" \
    "${rc[@]}" copy --s3-upload-cutoff 5M --s3-chunk-size 5M "$src" "c:$b/tree"
  check "rclone: lsf -R lists every file" count_is "$n_files" "${rc[@]}" lsf -R --files-only "c:$b"
  check "rclone: check (sizes and hashes) against the source" "${rc[@]}" check "$src" "c:$b/tree"
  check "rclone: copy down" "${rc[@]}" copy "c:$b/tree" "$down"
  check "rclone: downloaded tree is identical" diff -r "$src" "$down"
  check "rclone: delete objects" "${rc[@]}" delete "c:$b"
  check "rclone: bucket is empty" count_is 0 "${rc[@]}" lsf -R "c:$b"
  check "rclone: rmdir (bucket)" "${rc[@]}" rmdir "c:$b"
  check "rclone: bucket is gone" bash -c '! "$@" lsd c: | grep -q " '"$b"'$"' _ "${rc[@]}"
}

# ---------------------------------------------------------------- s3cmd
run_s3cmd() {
  local b=cli-s3cmd down="$work/down-s3cmd" cfg="$work/s3cmd.cfg"
  # The configuration `s3cmd --configure` writes when given only the keys and this
  # endpoint (and HTTPS only for the HTTPS server), used unmodified: its region is
  # "US", so s3cmd signs for it first and signs again for the region the server names.
  # Answers: key, secret, region, endpoint, bucket host template, encryption password,
  # gpg path, HTTPS, proxy, test access, save.
  local https=No tls=()
  [[ -n $ca ]] && https=Yes tls=(--ssl "--ca-certs=$ca")
  printf '%s\n' "$access_key" "$secret_key" "" "127.0.0.1:$port" "127.0.0.1:$port" "" "" "$https" "" n y |
    s3cmd --configure -c "$cfg" >"$work/s3cmd-configure.log" 2>&1
  check "s3cmd: --configure wrote region US" grep -qx 'bucket_location = US' "$cfg"
  local s3=(env -u AWS_CA_BUNDLE s3cmd -c "$cfg" --no-progress "${tls[@]}")
  check "s3cmd: mb" "${s3[@]}" mb "s3://$b"
  check "s3cmd: ls shows the bucket" bash -c '"$@" ls | grep -q "s3://'"$b"'$"' _ "${s3[@]}"
  check "s3cmd: put" "${s3[@]}" put "$src/top.txt" "s3://$b/one.txt"
  check "s3cmd: get" "${s3[@]}" get --force "s3://$b/one.txt" "$work/one.txt"
  check "s3cmd: got what was put" cmp "$src/top.txt" "$work/one.txt"
  check "s3cmd: del" "${s3[@]}" del "s3://$b/one.txt"
  check "s3cmd: sync up (multipart above 15 MiB)" "${s3[@]}" sync "$src/" "s3://$b/tree/"
  check "s3cmd: ls -r lists every file" count_is "$n_files" "${s3[@]}" ls -r "s3://$b/"
  check "s3cmd: info of a name with spaces" \
    "${s3[@]}" info "s3://$b/tree/dir with spaces/file with spaces.txt"
  mkdir -p "$down"
  check "s3cmd: sync down" "${s3[@]}" sync "s3://$b/tree/" "$down/"
  check "s3cmd: downloaded tree is identical" diff -r "$src" "$down"
  check "s3cmd: del --recursive" "${s3[@]}" del --recursive --force "s3://$b/"
  check "s3cmd: bucket is empty" count_is 0 "${s3[@]}" ls -r "s3://$b/"
  check "s3cmd: rb" "${s3[@]}" rb "s3://$b"
  check "s3cmd: bucket is gone" bash -c '! "$@" ls | grep -q "s3://'"$b"'$"' _ "${s3[@]}"
}

# every_client LABEL: each client's round against the running server.
every_client() {
  for client in aws rclone s3cmd; do
    echo "== $client ($1)"
    if ! command -v "$client" >/dev/null 2>&1; then
      failed=$((failed + 1))
      echo "FAIL  $client is not installed"
      continue
    fi
    "run_$client"
  done
}

every_client http
check "server: stops cleanly" "$bin" server stop

# ---------------------------------------------------------------- HTTPS
# A second store whose certificate `cybs3 server cert` makes; `server start` serves it.
export CYBS3_HOME="$work/home-tls"
cert="$("$bin" server cert --json)"
ca="$(json_field ca_cert <<<"$cert")"
start_server "$work/tls"
check "https: the server serves https" test "${endpoint%%://*}" = https
check "https: a client trusting the CA gets an answer" curl -sSf --cacert "$ca" "$endpoint/health/live"
check "https: a client not trusting it is refused" \
  bash -c '! env -u AWS_CA_BUNDLE curl -sSf "$1/health/live"' _ "$endpoint"
check "https: plain HTTP on the port gets no answer" \
  bash -c '! curl -sSf "http://${1#https://}/health/live"' _ "$endpoint"
every_client https
check "server (https): stops cleanly" "$bin" server stop
echo "$passed passed, $failed failed"
((failed == 0))
