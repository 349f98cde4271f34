#!/usr/bin/env bash
# The main job on its embedded default: installs, builds, starts a local
# cluster (1 meta + 3 stores on loopback) and runs a small demo workload that
# writes striped files, lists them and reads them back byte for byte.
# Usage: scripts/demo.sh [STATE_DIR]   (default: ./.stria-demo; kept for the next run)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release
STRIA=$PWD/build/bin/stria
DIR=${1:-$PWD/.stria-demo}
trap '$STRIA local down --dir "$DIR" >/dev/null 2>&1 || true' EXIT

echo "== starting a local cluster in $DIR"
out=$($STRIA local up --dir "$DIR" --stores 3)
export "$(echo "$out" | tail -n 1)"
echo "STRIA_META=$STRIA_META"
$STRIA cluster status

work=$(mktemp -d)
trap 'rm -rf "$work"; $STRIA local down --dir "$DIR" >/dev/null 2>&1 || true' EXIT
echo "== writing a dataset: 1 shard of 64 MiB striped over 3 targets, 20 small samples"
$STRIA rm -r /demo >/dev/null 2>&1 || true
$STRIA mkdir -p /demo/shards
$STRIA mkdir -p /demo/samples
$STRIA setstripe -c 3 -S 1M /demo/shards
head -c $((64 << 20)) /dev/urandom > "$work/shard-000.bin"
t0=$(date +%s.%N)
$STRIA put "$work/shard-000.bin" /demo/shards/shard-000.bin
t1=$(date +%s.%N)
for i in $(seq -w 0 19); do
  head -c $((100 * 1024 + RANDOM)) /dev/urandom > "$work/sample-$i.jpg"
  $STRIA put "$work/sample-$i.jpg" /demo/samples/sample-$i.jpg
done
echo "== listing"
$STRIA ls -l /demo/shards
$STRIA ls /demo/samples | head -n 5; echo "   ... ($($STRIA ls /demo/samples | wc -l) samples)"
$STRIA getstripe /demo/shards/shard-000.bin
echo "== reading back and comparing"
t2=$(date +%s.%N)
$STRIA get /demo/shards/shard-000.bin "$work/back.bin"
t3=$(date +%s.%N)
cmp "$work/shard-000.bin" "$work/back.bin"
for i in $(seq -w 0 19); do
  $STRIA cat /demo/samples/sample-$i.jpg | cmp - "$work/sample-$i.jpg"
done
awk -v w="$(echo "$t1 - $t0" | bc)" -v r="$(echo "$t3 - $t2" | bc)" \
  'BEGIN { printf "shard: put %.0f MiB/s, get %.0f MiB/s (64 MiB, through the CLI)\n", 64/w, 64/r }'
$STRIA df
echo "== demo OK: all files read back byte for byte"
