#!/usr/bin/env bash
# Build the .deb: cybs3 with its man pages, shell completions, default config and
# systemd units, with cargo-deb (installed if missing). The release binary is built
# first if it is not there. Prints the package's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb" >&2
  cargo install --quiet --locked cargo-deb@3.8.0
fi
[ -x target/release/cybs3 ] || cargo build --release -p cybs3
out=target/packaging
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
target/release/cybs3 man "$out/man"
gzip -9n "$out"/man/*.1
target/release/cybs3 completions bash >"$out/completions/cybs3.bash"
target/release/cybs3 completions zsh >"$out/completions/_cybs3"
target/release/cybs3 completions fish >"$out/completions/cybs3.fish"
cargo deb -p cybs3 --no-build --strip --quiet 2>&1 | tail -1
