"""Lazy import of a linked bucket: a directory's level of the bucket is
listed the first time the directory is looked at, page by page, and only
that level; through the CLI (libstria) and through a real mount.

    STRIA_BIN_DIR=build-test/bin /usr/bin/python3 -m pytest -q tests/repo/test_repo_import.py
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import uuid

import boto3
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fuse"))
from conftest import Mount, bin_path  # noqa: E402
from s3_fixtures import s3, proxy, s3c, cluster  # noqa: E402,F401 (fixtures)

BIG = 1050   # more than one ListObjectsV2 page


@pytest.fixture(scope="module")
def bucket(s3):
    """The bucket's keys, by key: what the tests expect to see."""
    name = "stria-import-" + uuid.uuid4().hex[:10]
    c = boto3.client("s3", endpoint_url=s3.endpoint, region_name=s3.region,
                     aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
                     config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                   max_pool_connections=16))
    c.create_bucket(Bucket=name)
    keys = {"train/top.txt": b"top level\n", "train/cats/c1.jpg": os.urandom(5000),
            "train/cats/deeper/c2.jpg": os.urandom(10), "train/dogs/d1.jpg": b"",
            "outside/not-linked.txt": b"x"}
    keys.update({"train/big/f%04d" % i: b"b" * (i % 7) for i in range(BIG)})
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: c.put_object(Bucket=name, Key=kv[0], Body=kv[1]), keys.items()))
    heads = {k: c.head_object(Bucket=name, Key=k) for k in ["train/cats/c1.jpg"]}
    return name, keys, heads


def lists(proxy):
    """The ListObjectsV2 requests the proxy has seen."""
    return [e for e in proxy.log() if e.method == "GET" and "list-type=2" in (e.query or "")]


def link(cluster, proxy, bucket_name, prefix="train"):
    d = "/data-" + uuid.uuid4().hex[:8]
    cluster.stria("mkdir", d)
    cluster.stria("repo", "link", d, f"s3://{bucket_name}/{prefix}", "--endpoint", proxy.url)
    return d


def test_levels_are_imported_when_first_looked_at(cluster, proxy, bucket):
    name, keys, heads = bucket
    d = link(cluster, proxy, name)
    before = len(lists(proxy))
    top = json.loads(cluster.stria("ls", "--json", d).stdout)
    got = {e["name"]: e for e in top}
    assert set(got) == {"top.txt", "cats", "dogs", "big"}
    assert got["cats"]["type"] == "directory" and got["top.txt"]["type"] == "file"
    assert got["top.txt"]["size"] == len(keys["train/top.txt"])
    # One page of one level: nothing below was listed.
    new = lists(proxy)[before:]
    assert len(new) == 1 and "delimiter=%2F" in new[0].query and "prefix=train%2F" in new[0].query
    # Looking again lists nothing.
    cluster.stria("ls", d)
    assert len(lists(proxy)) == before + 1

    # A level of more than 1,000 keys comes in pages.
    big = json.loads(cluster.stria("ls", "--json", f"{d}/big").stdout)
    assert sorted(e["name"] for e in big) == sorted("f%04d" % i for i in range(BIG))
    assert {e["name"]: e["size"] for e in big} == {"f%04d" % i: i % 7 for i in range(BIG)}
    assert len(lists(proxy)) == before + 3

    # A path straight to a deep file imports each level on the way.
    st = json.loads(cluster.stria("stat", "--json", f"{d}/cats/deeper/c2.jpg").stdout)
    assert st["size"] == 10 and st["type"] == "file", st
    st = json.loads(cluster.stria("stat", "--json", f"{d}/cats/c1.jpg").stdout)
    assert st["size"] == 5000
    lm = heads["train/cats/c1.jpg"]["LastModified"].timestamp()
    assert abs(st["mtime_ns"] / 1e9 - lm) <= 1.0
    r = cluster.stria("stat", f"{d}/cats/missing.jpg", check=False)
    assert r.returncode == 1 and "ENOENT" in r.stderr
    # Keys outside the prefix never show.
    r = cluster.stria("stat", f"{d}/not-linked.txt", check=False)
    assert r.returncode == 1 and "ENOENT" in r.stderr

    counts = [l for l in json.loads(cluster.stria("repo", "list", "--json").stdout) if l["path"] == d][0]["counts"]
    # top.txt, big/*, c1.jpg and c2.jpg so far; empty objects have nothing
    # to fetch and are resident at once.
    empty = sum(1 for i in range(BIG) if i % 7 == 0)
    assert counts["released_files"] == 1 + BIG - empty + 2
    assert counts["resident_files"] == empty and counts["resident_bytes"] == 0
    assert counts["released_bytes"] == len(keys["train/top.txt"]) + sum(i % 7 for i in range(BIG)) + 5010


def test_released_files_read_from_the_bucket_and_new_files_are_dirty(cluster, proxy, bucket, tmp_path):
    name, keys, _ = bucket
    d = link(cluster, proxy, name)
    assert cluster.stria("cat", f"{d}/top.txt").stdout == keys["train/top.txt"].decode()
    src = tmp_path / "ckpt"
    src.write_bytes(os.urandom(70000))
    cluster.stria("put", str(src), f"{d}/ckpt.bin")
    counts = [l for l in json.loads(cluster.stria("repo", "list", "--json").stdout) if l["path"] == d][0]["counts"]
    assert counts["dirty_files"] == 1 and counts["dirty_bytes"] == 70000
    # A name that came from the bucket cannot leave the link (EXDEV, as a
    # rename across file systems).
    r = cluster.stria("mv", f"{d}/ckpt.bin", "/ckpt-elsewhere", check=False)
    assert r.returncode == 1 and "EXDEV" in r.stderr


def test_the_mount_imports_and_reads_too(cluster, proxy, bucket):
    name, keys, _ = bucket
    d = link(cluster, proxy, name)
    m = Mount(cluster)
    try:
        root = m.path + d
        assert sorted(os.listdir(root)) == ["big", "cats", "dogs", "top.txt"]
        assert sorted(os.listdir(root + "/cats")) == ["c1.jpg", "deeper"]
        assert os.stat(root + "/cats/c1.jpg").st_size == 5000
        assert os.path.isdir(root + "/cats/deeper")
        assert not os.path.exists(root + "/cats/nothing")
        with open(root + "/cats/c1.jpg", "rb") as f:   # hydrated on first read
            assert f.read() == keys["train/cats/c1.jpg"]
    finally:
        m.close()


def test_unreachable_bucket_gives_a_clear_error(cluster, proxy, bucket):
    name, _, _ = bucket
    d = link(cluster, proxy, name)
    proxy.refuse(close_listener=False)
    try:
        r = subprocess.run([bin_path("stria"), "ls", d, "--meta", cluster.meta, "--timeout", "3"],
                           capture_output=True, text=True, timeout=60)
    finally:
        proxy.allow()
    assert r.returncode == 1
    assert "import of directory" in r.stderr and proxy.url.split("//")[1] in r.stderr, r.stderr
    # Nothing half-done: the next look imports the level whole.
    names = json.loads(cluster.stria("ls", "--json", d).stdout)
    assert sorted(e["name"] for e in names) == ["big", "cats", "dogs", "top.txt"]


def test_eager_import_and_status(cluster, proxy, bucket):
    name, keys, _ = bucket
    d = link(cluster, proxy, name)
    train = {k: v for k, v in keys.items() if k.startswith("train/")}
    r = json.loads(cluster.stria("repo", "import", d, "--json").stdout)
    assert r["files"] == len(train) and r["bytes"] == sum(len(v) for v in train.values())
    assert r["directories"] == 5   # the link, big, cats, cats/deeper, dogs
    before = len(lists(proxy))
    # Everything is in meta now: looking around lists nothing more.
    for sub in ["", "/big", "/cats", "/cats/deeper", "/dogs"]:
        cluster.stria("ls", d + sub)
    assert len(lists(proxy)) == before
    st = json.loads(cluster.stria("repo", "status", d + "/cats", "--json").stdout)
    assert st["link"] == d and st["url"] == f"s3://{name}/train/"
    empty = sum(1 for v in train.values() if not v)
    assert st["counts"]["released_files"] == len(train) - empty
    assert st["counts"]["resident_files"] == empty
    assert st["counts"]["released_bytes"] == sum(len(v) for v in train.values())
    text = cluster.stria("repo", "status", d).stdout
    assert "released" in text and str(len(train) - empty) in text
    r = cluster.stria("repo", "status", "/", check=False)
    assert r.returncode == 1 and "not under a data repository link" in r.stderr
