#!/usr/bin/env bash
# Installs every Debian 12 package Stria needs to build, test and run.
# Idempotent: when everything is already installed it touches nothing.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config clang
  # libraries (ARCHITECTURE.md, "Dependencies")
  libasio-dev libprotobuf-dev protobuf-compiler librocksdb-dev libisal-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev
  libfuse3-dev fuse3 libssl-dev libcurl4-openssl-dev libpugixml-dev
  # tests and benchmarks
  libgtest-dev libbenchmark-dev python3-pytest fio procps iproute2 bc
  # the S3 tier's tests: a real S3 server (OpenStack Swift with s3api) and
  # botocore, whose signer ours is checked against
  swift swift-proxy swift-object swift-container swift-account python3-swift
  memcached python3-botocore python3-boto3 curl
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
