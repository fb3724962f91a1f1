#!/usr/bin/env bash
# Installs the system packages the build and the tests need. Idempotent; run as root (CI and dev machines are).
# libclang-dev: bindgen in librocksdb-sys. librocksdb-dev: we link Debian's RocksDB 7.8 (rocksdb crate =0.20.1),
# which saves a ~21 min C++ build. softhsm2 + opensc: the PKCS#11 HSM used by dev, devnet and tests. nftables,
# iproute2, util-linux (ip netns, nft, setpriv): the network-fault tests (they skip, saying why, where these cannot run).
set -euo pipefail
pkgs=(libclang-dev librocksdb-dev softhsm2 opensc pkg-config nftables iproute2 util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
