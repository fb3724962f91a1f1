#!/usr/bin/env bash
# Starts a local federation (default 3-of-4, 1 s blocks) on SoftHSM tokens under ./devnet, and shows the chain
# growing. Ctrl-C stops it; running it again reuses the same directory, keys and chain.
# Flags go to the devnet binary: --members N --threshold M --interval 500ms --dir PATH
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --locked --bins -q
exec "${CARGO_TARGET_DIR:-target}/debug/devnet" "$@"
