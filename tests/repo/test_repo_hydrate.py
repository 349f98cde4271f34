"""Hydration: a released file's bytes come from its bucket on first read,
fetched by the stores that hold its stripes, chunk by chunk, and are then
served from Stria; a writer hydrates the file whole first.

    STRIA_BIN_DIR=build-test/bin /usr/bin/python3 -m pytest -q tests/repo/test_repo_hydrate.py
"""
import concurrent.futures
import glob
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fuse"))
from conftest import Cluster, Mount, bin_path  # noqa: E402
from s3_fixtures import s3, proxy, s3c, cluster  # noqa: E402,F401 (fixtures)

MiB = 1 << 20
# Files from a bucket are striped in 8 MiB units over the 3 stores (one
# GET each): sizes around their edges.
UNIT = 8 * MiB
SIZES = {"zero": 0, "one": 1, "small": 5000, "unit": UNIT, "unit-plus": UNIT + 1,
         "row": 3 * UNIT, "row-minus": 3 * UNIT - 1, "odd": 7 * MiB + 12345}
LARGE = int(os.environ.get("STRIA_TEST_HYDRATE_MIB", "300")) * MiB


def pattern(n, seed):
    """Bytes that differ at every offset and between files."""
    block = hashlib.sha256(seed.encode()).digest() * 2048   # 64 KiB
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(block[:32] + i.to_bytes(8, "little")).digest()[:16] + block[16:]
        i += 1
    return bytes(out[:n])


@pytest.fixture(scope="module")
def bucket(s3c):
    name = "stria-hydrate-" + uuid.uuid4().hex[:10]
    s3c.create_bucket(Bucket=name)
    files = {k: pattern(n, k) for k, n in SIZES.items()}
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda kv: s3c.put_object(Bucket=name, Key="d/" + kv[0], Body=kv[1]), files.items()))
    return name, files


def link(cluster, proxy, bucket_name, prefix="d"):
    d = "/h-" + uuid.uuid4().hex[:8]
    cluster.stria("mkdir", d)
    cluster.stria("repo", "link", d, f"s3://{bucket_name}/{prefix}", "--endpoint", proxy.url)
    return d


def gets(proxy, key=None):
    """The object GETs the proxy has seen (ranged reads), optionally of one key."""
    return [e for e in proxy.log() if e.method == "GET" and "list-type" not in (e.query or "")
            and (key is None or e.path.endswith("/" + key))]


def status(cluster, path):
    return json.loads(cluster.stria("repo", "status", path, "--json").stdout)["counts"]


def wait_for(pred, what, timeout=15):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def cat(cluster, path):
    r = subprocess.run([bin_path("stria"), "cat", path, "--meta", cluster.meta],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def test_first_read_is_byte_exact_and_the_second_reads_no_bucket(cluster, proxy, bucket):
    name, files = bucket
    d = link(cluster, proxy, name)
    for k, body in files.items():
        assert cat(cluster, f"{d}/{k}") == body, k
    fetched = len(gets(proxy))
    assert fetched > 0
    for k, body in files.items():
        assert cat(cluster, f"{d}/{k}") == body, k
    assert len(gets(proxy)) == fetched   # all served from the stores now
    # Each chunk was fetched once, with If-Match on the object's ETag.
    ranges = [(e.path, e.range) for e in gets(proxy)]
    assert len(ranges) == len(set(ranges))
    # The stores report whole objects; meta marks the files resident.
    total = sum(len(b) for b in files.values())
    wait_for(lambda: status(cluster, d)["resident_files"] == len(files), "all files resident")
    assert json.loads(cluster.stria("stat", "--json", f"{d}/odd").stdout)["repo_state"] == "resident"
    n = status(cluster, d)
    assert n["resident_bytes"] == total and n["released_files"] == 0


def test_a_read_in_the_middle_comes_before_the_rest(cluster, proxy, bucket, s3c):
    name, _ = bucket
    body = pattern(64 * MiB, "middle")
    s3c.put_object(Bucket=name, Key="m/middle.bin", Body=body)
    d = link(cluster, proxy, name, "m")
    m = Mount(cluster)
    try:
        before = len(gets(proxy))
        with open(m.path + d + "/middle.bin", "rb") as f:
            f.seek(40 * MiB + 777)
            assert f.read(4096) == body[40 * MiB + 777:40 * MiB + 777 + 4096]
        # Only the unit holding it (and the read-ahead of its store) was fetched.
        got = gets(proxy)[before:]
        assert 1 <= len(got) <= 5, [e.range for e in got]
        assert any(e.range == f"bytes={40 * MiB}-{48 * MiB - 1}" for e in got), [e.range for e in got]
        assert status(cluster, d)["released_files"] == 1
        assert "Repo: released" in cluster.stria("stat", f"{d}/middle.bin").stdout
        # The whole file then reads right, through the mount.
        with open(m.path + d + "/middle.bin", "rb") as f:
            assert f.read() == body
    finally:
        m.close()


def test_chunks_no_longer_in_memory_are_read_from_the_stores(cluster, proxy, bucket, s3c):
    # Fetched chunks serve their readers from the stores' memory; with no
    # memory kept for them, those fetched ahead of a read come from disk.
    name, _ = bucket
    body = pattern(64 * MiB + 3, "nomem")
    s3c.put_object(Bucket=name, Key="n/nomem.bin", Body=body)
    c = Cluster(args=["--store-args", "--fetch-memory-mib 0"])
    m = None
    try:
        d = link(c, proxy, name, "n")
        m = Mount(c)
        with open(m.path + d + "/nomem.bin", "rb") as f:
            f.seek(20 * MiB + 5)
            assert f.read(4096) == body[20 * MiB + 5:20 * MiB + 5 + 4096]
        # Fetched ahead, written and dropped from memory (marked once durable).
        wait_for(lambda: sum(open(p, "rb").read().count(b"\x01")
                             for p in glob.glob(c.dir + "/store-*/target/objects/*/*.res")) >= 2,
                 "chunks fetched ahead marked resident")
        before = len(gets(proxy, "nomem.bin"))
        with open(m.path + d + "/nomem.bin", "rb") as f:
            assert f.read() == body
        # Each unit was fetched once: what was in came from the stores.
        got = gets(proxy, "nomem.bin")
        assert len(got) == 9 and len({e.range for e in got}) == 9, [e.range for e in got]
        assert len(got) - before < 9
    finally:
        if m:
            m.close()
        c.down()


def store_counter(cluster, name):
    """A counter summed over the cluster's stores (their /metrics)."""
    total = 0
    for port_file in glob.glob(cluster.dir + "/store-*/store.port"):
        admin = dict(line.split("=", 1) for line in open(port_file).read().split())["admin"]
        text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=10).read().decode()
        total += sum(int(float(line.split()[1])) for line in text.splitlines() if line.startswith(name + " "))
    return total


def test_chunk_buffers_are_reused_from_one_file_to_the_next(cluster, proxy, bucket, s3c):
    # A store keeps its chunk buffers while it hydrates: new memory costs
    # the kernel a zeroing of every page. The pool is given back only after
    # 5 s in which no fetch thread took a job (it used to be given back
    # whenever one thread of 16 had waited 5 s, in the middle of reads).
    name, _ = bucket
    bodies = {k: pattern(6 * UNIT, k) for k in ("reuse-a", "reuse-b")}
    for k, body in bodies.items():
        s3c.put_object(Bucket=name, Key="r/" + k, Body=body)
    c = Cluster()
    try:
        d = link(c, proxy, name, "r")
        counter = "stria_store_hydration_buffers_allocated_total"
        assert cat(c, f"{d}/reuse-a") == bodies["reuse-a"]
        first = store_counter(c, counter)
        assert first >= 3   # at least one chunk buffer in each store
        time.sleep(3.5)     # idle, but for less than 5 s
        assert cat(c, f"{d}/reuse-b") == bodies["reuse-b"]
        again = store_counter(c, counter) - first
        assert again <= first // 2, f"{again} new chunk buffers for the second file, {first} for the first"
    finally:
        c.down()


def test_concurrent_first_reads_from_two_mounts_share_the_fetches(cluster, proxy, bucket, s3c):
    name, _ = bucket
    body = pattern(24 * MiB + 100, "shared")
    s3c.put_object(Bucket=name, Key="s/shared.bin", Body=body)
    d = link(cluster, proxy, name, "s")
    m1, m2 = Mount(cluster), Mount(cluster)
    try:
        before = len(gets(proxy))
        out = {}

        def read(m):
            with open(m.path + d + "/shared.bin", "rb") as f:
                out[m.path] = f.read()
        ts = [threading.Thread(target=read, args=(m,)) for m in (m1, m2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert out[m1.path] == body and out[m2.path] == body
        got = [e.range for e in gets(proxy)[before:]]
        assert len(got) == len(set(got)) == 4, got   # one GET per 8 MiB unit, none twice
    finally:
        m1.close()
        m2.close()


def test_large_file_hydrates_byte_exact(cluster, proxy, bucket, s3c, tmp_path):
    name, _ = bucket
    src = tmp_path / "large"
    with open(src, "wb") as f:
        for i in range(0, LARGE, 8 * MiB):
            f.write(pattern(min(8 * MiB, LARGE - i), f"large{i}"))
    s3c.upload_file(str(src), name, "l/large.bin")
    d = link(cluster, proxy, name, "l")
    out = tmp_path / "back"
    cluster.stria("get", f"{d}/large.bin", str(out))
    assert os.path.getsize(out) == LARGE
    with open(src, "rb") as a, open(out, "rb") as b:
        while True:
            x, y = a.read(8 * MiB), b.read(8 * MiB)
            assert x == y
            if not x:
                break
    wait_for(lambda: status(cluster, d)["resident_files"] == 1, "large file resident")


def test_writing_a_released_file_hydrates_it_first(cluster, proxy, bucket):
    name, files = bucket
    d = link(cluster, proxy, name)
    m = Mount(cluster)
    try:
        p = m.path + d + "/odd"
        with open(p, "r+b") as f:   # no O_TRUNC: the rest of the file must stay
            f.seek(MiB + 5)
            f.write(b"XYZ")
        want = bytearray(files["odd"])
        want[MiB + 5:MiB + 8] = b"XYZ"
        with open(p, "rb") as f:
            assert f.read() == bytes(want)
        # A cut of a released file keeps what is before the cut.
        os.truncate(m.path + d + "/row", 2 * MiB + 3)
        with open(m.path + d + "/row", "rb") as f:
            assert f.read() == files["row"][:2 * MiB + 3]
        n = status(cluster, d)
        assert n["dirty_files"] == 2
    finally:
        m.close()


def test_changed_object_restarts_the_file_cleanly(cluster, proxy, bucket, s3c):
    name, _ = bucket
    old = pattern(2 * UNIT + 5, "old")   # three units: more than one GET
    s3c.put_object(Bucket=name, Key="c/changing.bin", Body=old)
    d = link(cluster, proxy, name, "c")
    cluster.stria("ls", d)   # imported with the old ETag
    new = pattern(2 * UNIT + 4321, "new")
    proxy.change_between_gets("c/changing.bin", new)
    r = subprocess.run([bin_path("stria"), "cat", f"{d}/changing.bin", "--meta", cluster.meta],
                       capture_output=True, timeout=120)
    assert proxy.changes(), "the object was not changed mid-way"
    # The object changed after its first chunk (412 on If-Match): the file
    # starts again from the new object, never a mix of old and new bytes.
    assert r.returncode == 0, r.stderr
    assert r.stdout == new
    st = json.loads(cluster.stria("stat", "--json", f"{d}/changing.bin").stdout)
    assert st["size"] == len(new)
    assert cat(cluster, f"{d}/changing.bin") == new


def test_unreachable_endpoint_gives_eio_not_a_hang(cluster, proxy, bucket):
    name, files = bucket
    d = link(cluster, proxy, name)
    cluster.stria("ls", d)
    proxy.refuse(close_listener=True)
    try:
        t0 = time.monotonic()
        r = subprocess.run([bin_path("stria"), "cat", f"{d}/small", "--meta", cluster.meta],
                           capture_output=True, timeout=120)
        took = time.monotonic() - t0
    finally:
        proxy.allow()
    assert r.returncode == 1 and b"EIO" in r.stderr, r.stderr
    assert proxy.url.split("//")[1].encode() in r.stderr, r.stderr   # names the endpoint
    assert took < 60, took
    # Nothing half-done: with the endpoint back the file reads right.
    assert cat(cluster, f"{d}/small") == files["small"]


def test_every_daemon_killed_mid_hydration_leaves_nothing_wrong(cluster, proxy, bucket, s3c):
    name, _ = bucket
    body = pattern(120 * MiB + 5, "restart")   # 16 units: more than the stores fetch ahead of a read
    s3c.put_object(Bucket=name, Key="r/restart.bin", Body=body)
    d = link(cluster, proxy, name, "r")
    m = Mount(cluster)
    try:
        with open(m.path + d + "/restart.bin", "rb") as f:
            assert f.read(4 * MiB) == body[:4 * MiB]   # some chunks in, more on their way
        # Some of them durable and marked in a store's residency map.
        wait_for(lambda: any(b"\x01" in open(p, "rb").read()
                             for p in glob.glob(cluster.dir + "/store-*/target/objects/*/*.res")),
                 "a chunk marked resident")
    finally:
        m.kill()
        m.close()
    for daemon in ["store-0", "store-1", "store-2", "meta"]:
        subprocess.run([bin_path("stria"), "local", "kill", "--dir", cluster.dir, daemon], check=True,
                       capture_output=True, timeout=60)
    subprocess.run([bin_path("stria"), "local", "up", "--dir", cluster.dir], check=True,
                   capture_output=True, timeout=120)
    before = len(gets(proxy, "restart.bin"))
    assert cat(cluster, f"{d}/restart.bin") == body
    again = len(gets(proxy, "restart.bin")) - before
    assert 0 < again < 16, again   # what was in before the kill stayed in
    wait_for(lambda: status(cluster, d)["resident_files"] == 1, "file resident after the restarts")
