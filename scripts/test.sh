#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs system packages, builds, checks formatting and lints, runs
# every test (unit, SoftHSM, RocksDB, libp2p sockets, multi-process federations).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== unit and crate tests"
cargo test --locked --workspace --exclude tests
echo "== multi-process federation tests (release binaries, one test at a time: each runs a whole federation)"
# Up to 15 daemons share this machine's cores; optimised builds keep them within the block interval, as in
# production, instead of measuring debug-build overhead.
cargo build --locked --release --workspace --bins
cargo test --locked --release -p tests -- --test-threads=1
