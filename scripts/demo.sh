#!/usr/bin/env bash
# The main job on its embedded default: installs, builds, starts a local
# cluster (1 meta + 3 stores on loopback) and runs a small demo workload that
# writes striped files, lists them and reads them back byte for byte; then,
# with a local S3 server (OpenStack Swift with s3api) holding a bucket of
# sample files, links a directory to it, reads the samples through a FUSE
# mount (first read from the bucket, then from Stria), writes a
# "checkpoint", exports it to the bucket and shows the state counts.
# Usage: scripts/demo.sh [STATE_DIR]   (default: ./.stria-demo; kept for the next run)
# STRIA_BIN_DIR=DIR skips the install and the build and uses the binaries in
# DIR (the test suite runs the demo so).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${STRIA_BIN_DIR:-}" ]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh release
  STRIA_BIN_DIR=$PWD/build/bin
fi
STRIA=$STRIA_BIN_DIR/stria
DIR=$(realpath -m "${1:-$PWD/.stria-demo}")
mkdir -p "$DIR"
work=$(mktemp -d)
mnt=$(mktemp -d)
cleanup() {
  $STRIA local down --dir "$DIR" >/dev/null 2>&1 || true
  /usr/bin/python3 tests/repo/swift_s3.py stop --dir "$DIR/s3" >/dev/null 2>&1 || true
  rm -rf "$work"
  rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT

# The S3 server first: the stores hydrate from it with these credentials.
echo "== starting a local S3 server (Swift + s3api) in $DIR/s3"
s3env=$(/usr/bin/python3 tests/repo/swift_s3.py start --dir "$DIR/s3")
export $s3env   # S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
echo "S3_ENDPOINT=$S3_ENDPOINT"

echo "== starting a local cluster in $DIR, mounted at $mnt"
out=$($STRIA local up --dir "$DIR" --stores 3 --mount "$mnt")
export "$(echo "$out" | tail -n 1)"
echo "STRIA_META=$STRIA_META"
$STRIA cluster status

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

echo "== a bucket of sample files on the S3 server, linked to /datasets"
bucket=stria-demo-$(date +%s)
/usr/bin/python3 - "$bucket" "$work" <<'PY'
import os, sys, boto3
from botocore.config import Config
bucket, work = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["AWS_REGION"],
                  config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket=bucket)
os.makedirs(f"{work}/bucket/train/images")
files = {f"train/images/img-{i:03d}.jpg": os.urandom(110 * 1024 + i) for i in range(50)}
files["train/shard-000.tar"] = os.urandom(48 << 20)
for key, body in files.items():
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    with open(f"{work}/bucket/{key}", "wb") as f:
        f.write(body)
print(f"{len(files)} objects, {sum(map(len, files.values())) >> 20} MiB in s3://{bucket}/train/")
PY
$STRIA rm -r /datasets >/dev/null 2>&1 || true
$STRIA mkdir /datasets
$STRIA repo link /datasets "s3://$bucket/train" --endpoint "$S3_ENDPOINT" --region "$AWS_REGION"
$STRIA repo list
echo "== reading the samples through the mount at $mnt (each fetched from the bucket on first read)"
ls "$mnt/datasets" "$mnt/datasets/images" | head -n 8
t0=$(date +%s.%N)
for f in "$work"/bucket/train/images/*.jpg; do cmp "$f" "$mnt/datasets/images/$(basename "$f")"; done
cmp "$work/bucket/train/shard-000.tar" "$mnt/datasets/shard-000.tar"
t1=$(date +%s.%N)
cmp "$work/bucket/train/shard-000.tar" "$mnt/datasets/shard-000.tar"
t2=$(date +%s.%N)
awk -v a="$(echo "$t1 - $t0" | bc)" -v b="$(echo "$t2 - $t1" | bc)" \
  'BEGIN { printf "first read of 53 MiB from the bucket: %.1f s; second read of the 48 MiB shard (kernel page cache): %.2f s\n", a, b }'
echo "== writing a checkpoint under the link and exporting it to the bucket"
mkdir -p "$mnt/datasets/checkpoints"
head -c $((32 << 20)) /dev/urandom > "$work/step-100.pt"
cp "$work/step-100.pt" "$mnt/datasets/checkpoints/step-100.pt"
$STRIA repo status /datasets
$STRIA repo export /datasets
/usr/bin/python3 - "$bucket" "$work/step-100.pt" <<'PY'
import os, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["AWS_REGION"],
                  config=Config(s3={"addressing_style": "path"}))
body = s3.get_object(Bucket=sys.argv[1], Key="train/checkpoints/step-100.pt")["Body"].read()
assert body == open(sys.argv[2], "rb").read(), "the exported checkpoint differs"
print(f"s3://{sys.argv[1]}/train/checkpoints/step-100.pt: {len(body) >> 20} MiB, same bytes")
PY
$STRIA repo status /datasets
echo "== demo OK: all files read back byte for byte, the checkpoint is in the bucket"
