"""Export, release and warm: dirty files go back to the bucket (one PUT or
a multipart upload), resident files give their space back and come again
on the next read, and released files are fetched ahead of a job.

    STRIA_BIN_DIR=build-test/bin /usr/bin/python3 -m pytest -q tests/repo/test_repo_export.py
"""
import glob
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fuse"))
from conftest import Mount, bin_path  # noqa: E402
from s3_fixtures import s3, proxy, s3c, cluster  # noqa: E402,F401 (fixtures)

MiB = 1 << 20


@pytest.fixture(scope="module")
def bucket(s3c):
    name = "stria-export-" + uuid.uuid4().hex[:10]
    s3c.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def mount(cluster):
    m = Mount(cluster)
    yield m
    m.close()


def link(cluster, proxy, bucket):
    prefix = "p-" + uuid.uuid4().hex[:8]
    d = "/" + prefix
    cluster.stria("mkdir", d)
    cluster.stria("repo", "link", d, f"s3://{bucket}/{prefix}", "--endpoint", proxy.url)
    return d, prefix


def linked_bucket(cluster, proxy, bucket, s3c, name, objects, *flags):
    """A new prefix holding objects ({key: body}), a directory linked to it
    (with flags) and its metadata imported: (directory, prefix)."""
    prefix = name + "-" + uuid.uuid4().hex[:8]
    d = "/" + prefix
    for k, body in objects.items():
        s3c.put_object(Bucket=bucket, Key=f"{prefix}/{k}", Body=body)
    cluster.stria("mkdir", d)
    cluster.stria("repo", "link", d, f"s3://{bucket}/{prefix}", "--endpoint", proxy.url, *flags)
    cluster.stria("repo", "import", d)
    return d, prefix


def counts(cluster, d):
    return json.loads(cluster.stria("repo", "status", d, "--json").stdout)["counts"]


def run_json(cluster, *args):
    return json.loads(cluster.stria(*args, "--json").stdout)


def body_of(s3c, bucket, key):
    return s3c.get_object(Bucket=bucket, Key=key)["Body"].read()


def in_bucket(s3c, bucket, key):
    return any(o["Key"] == key for o in s3c.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", []))


def object_gets(proxy):
    return [e for e in proxy.log() if e.method == "GET" and "list-type" not in (e.query or "")]


def test_export_uploads_dirty_files_single_and_multipart(cluster, proxy, bucket, s3c, mount):
    d, prefix = link(cluster, proxy, bucket)
    small, big = os.urandom(70000), os.urandom(20 * MiB + 3)   # big: 3 parts of 8 MiB
    os.makedirs(mount.path + d + "/ckpt/step1")
    with open(mount.path + d + "/ckpt/step1/small.bin", "wb") as f:
        f.write(small)
    with open(mount.path + d + "/ckpt/step1/big.bin", "wb") as f:
        f.write(big)
    n = counts(cluster, d)
    assert n["dirty_files"] == 2 and n["dirty_bytes"] == len(small) + len(big)
    before = len(proxy.log())
    r = run_json(cluster, "repo", "export", d)
    assert r["files"] == 2 and r["bytes"] == len(small) + len(big) and r["failed"] == 0, r
    assert body_of(s3c, bucket, f"{prefix}/ckpt/step1/small.bin") == small
    assert body_of(s3c, bucket, f"{prefix}/ckpt/step1/big.bin") == big
    posts = [e for e in proxy.log()[before:] if e.method == "POST"]
    assert any("uploads" in (e.query or "") for e in posts)   # the big one went multipart
    n = counts(cluster, d)
    assert n["dirty_files"] == 0 and n["resident_files"] == 2
    # Nothing dirty: nothing to send.
    assert run_json(cluster, "repo", "export", d)["files"] == 0

    # A change makes it dirty again; the next export sends the new bytes.
    with open(mount.path + d + "/ckpt/step1/small.bin", "r+b") as f:
        f.write(b"CHANGED")
    assert counts(cluster, d)["dirty_files"] == 1
    assert run_json(cluster, "repo", "export", d + "/ckpt")["files"] == 1
    assert body_of(s3c, bucket, f"{prefix}/ckpt/step1/small.bin") == b"CHANGED" + small[7:]

    # A renamed file goes to its new name.
    os.rename(mount.path + d + "/ckpt/step1/small.bin", mount.path + d + "/ckpt/step1/renamed.bin")
    with open(mount.path + d + "/ckpt/step1/renamed.bin", "ab") as f:
        f.write(b"!")
    assert run_json(cluster, "repo", "export", d)["files"] == 1
    assert body_of(s3c, bucket, f"{prefix}/ckpt/step1/renamed.bin") == b"CHANGED" + small[7:] + b"!"
    # So does a file whose directory was renamed.
    os.rename(mount.path + d + "/ckpt/step1", mount.path + d + "/ckpt/step2")
    with open(mount.path + d + "/ckpt/step2/renamed.bin", "ab") as f:
        f.write(b"?")
    # (and the clean file beside it is copied to its new key)
    assert run_json(cluster, "repo", "export", d)["files"] == 2
    assert body_of(s3c, bucket, f"{prefix}/ckpt/step2/renamed.bin") == b"CHANGED" + small[7:] + b"!?"
    assert body_of(s3c, bucket, f"{prefix}/ckpt/step2/big.bin") == big


def test_release_frees_and_the_next_read_fetches_again(cluster, proxy, bucket, s3c, mount):
    d, prefix = link(cluster, proxy, bucket)
    data = os.urandom(5 * MiB + 17)
    with open(mount.path + d + "/model.bin", "wb") as f:
        f.write(data)
    run_json(cluster, "repo", "export", d)
    # Open anywhere: its objects stay (EBUSY), nothing changes.
    with open(mount.path + d + "/model.bin", "rb"):
        r = cluster.stria("repo", "release", d + "/model.bin", check=False)
        assert r.returncode == 1 and "EBUSY" in r.stderr, r.stderr
    assert counts(cluster, d)["resident_files"] == 1
    r = run_json(cluster, "repo", "release", d)
    assert r["files"] == 1 and r["bytes"] == len(data)
    n = counts(cluster, d)
    assert n["released_files"] == 1 and n["resident_files"] == 0
    st = os.stat(mount.path + d + "/model.bin")
    assert st.st_size == len(data)   # the metadata stays
    before = len(object_gets(proxy))
    with open(mount.path + d + "/model.bin", "rb") as f:
        assert f.read() == data
    assert len(object_gets(proxy)) > before   # it came from the bucket
    # The stores report whole objects with their heartbeat: resident soon.
    deadline = time.monotonic() + 15
    while counts(cluster, d)["resident_files"] != 1:
        assert time.monotonic() < deadline, "not resident 15 s after a whole read"
        time.sleep(0.1)

    # Warm fetches it whole ahead of a job; then reads cost no GET.
    r = run_json(cluster, "repo", "release", d)
    assert r["files"] == 1, r
    r = run_json(cluster, "repo", "warm", d)
    assert r["files"] == 1 and r["bytes"] == len(data), r
    assert counts(cluster, d)["resident_files"] == 1   # at once, from the client's report
    before = len(object_gets(proxy))
    out = subprocess.run([bin_path("stria"), "cat", d + "/model.bin", "--meta", cluster.meta],
                         capture_output=True, timeout=60)
    assert out.returncode == 0 and out.stdout == data
    assert len(object_gets(proxy)) == before


def test_tree_commands_report_bad_paths(cluster, proxy, bucket):
    r = cluster.stria("repo", "export", "/", check=False)
    assert r.returncode == 1 and "not under a data repository link" in r.stderr
    d, _ = link(cluster, proxy, bucket)
    r = cluster.stria("repo", "warm", d + "/missing", check=False)
    assert r.returncode == 1 and "ENOENT" in r.stderr
    r = cluster.stria("repo", "release", d, "--jobs", "0", check=False)
    assert r.returncode != 0 and "jobs" in r.stderr


def test_sync_picks_up_new_changed_and_deleted_objects(cluster, proxy, bucket, s3c, mount):
    d, prefix = link(cluster, proxy, bucket)
    put = lambda key, body: s3c.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=body)  # noqa: E731
    for key, body in {"a.txt": b"a1", "b.txt": b"b1", "c.txt": b"c1", "keep.txt": b"k1",
                      "sub/x.txt": b"x1"}.items():
        put(key, body)
    assert cluster.stria("cat", d + "/b.txt").stdout == "b1"   # b resident now
    cluster.stria("ls", d + "/sub")
    with open(mount.path + d + "/local.txt", "wb") as f:        # dirty: never in the bucket
        f.write(b"mine")
    with open(mount.path + d + "/keep.txt", "r+b") as f:        # dirty: changed here
        f.write(b"K")
    # The bucket moves on.
    put("d.txt", b"d1")
    put("b.txt", b"b2, longer")
    put("sub/y.txt", b"y1")
    put("newdir/z.txt", b"z1")
    s3c.delete_object(Bucket=bucket, Key=f"{prefix}/c.txt")
    s3c.delete_object(Bucket=bucket, Key=f"{prefix}/keep.txt")
    r = run_json(cluster, "repo", "sync", d)
    assert (r["created"], r["changed"], r["removed"], r["directories"]) == (3, 1, 1, 2), r
    assert sorted(os.listdir(mount.path + d)) == ["a.txt", "b.txt", "d.txt", "keep.txt", "local.txt",
                                                  "newdir", "sub"]
    assert cluster.stria("cat", d + "/b.txt").stdout == "b2, longer"
    assert cluster.stria("cat", d + "/d.txt").stdout == "d1"
    assert cluster.stria("cat", d + "/sub/y.txt").stdout == "y1"
    assert cluster.stria("cat", d + "/newdir/z.txt").stdout == "z1"
    assert cluster.stria("cat", d + "/keep.txt").stdout == "K1"   # dirty: kept, exported later
    # In step now: a second sync changes nothing.
    r = run_json(cluster, "repo", "sync", d)
    assert (r["created"], r["changed"], r["removed"]) == (0, 0, 0), r
    r = cluster.stria("repo", "sync", d + "/local.txt", check=False)
    assert r.returncode == 1 and "ENOTDIR" in r.stderr


def test_auto_export_sends_a_checkpoint_after_its_last_close(cluster, proxy, bucket, s3c, mount):
    prefix = "auto-" + uuid.uuid4().hex[:8]
    d = "/" + prefix
    cluster.stria("mkdir", d)
    cluster.stria("repo", "link", d, f"s3://{bucket}/{prefix}", "--endpoint", proxy.url,
                  "--auto-export-delay", "2")
    data = os.urandom(3 * MiB + 5)
    os.makedirs(mount.path + d + "/run1")
    t0 = time.monotonic()
    with open(mount.path + d + "/run1/step-10.pt", "wb") as f:
        f.write(data)
    # stria-mover (started by `local up`) sends it once it has been quiet
    # for the delay: no export command.
    deadline = t0 + 30
    while True:
        try:
            got = body_of(s3c, bucket, f"{prefix}/run1/step-10.pt")
            break
        except s3c.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, "not exported within 30 s"
            time.sleep(0.2)
    assert got == data
    assert time.monotonic() - t0 >= 2   # not before the delay
    deadline = time.monotonic() + 10
    while counts(cluster, d)["resident_files"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert counts(cluster, d)["dirty_files"] == 0
    # A checkpoint directory renamed once it was sent (tmp -> final, say):
    # its files are clean, and stria-mover copies them to the new name.
    os.rename(mount.path + d + "/run1", mount.path + d + "/final")
    assert counts(cluster, d)["renames"] == 1
    deadline = time.monotonic() + 30
    while not in_bucket(s3c, bucket, f"{prefix}/final/step-10.pt"):
        assert time.monotonic() < deadline, "not copied to the new name within 30 s"
        time.sleep(0.2)
    assert body_of(s3c, bucket, f"{prefix}/final/step-10.pt") == data
    deadline = time.monotonic() + 10
    while counts(cluster, d)["renames_exported"] != counts(cluster, d)["renames"]:
        assert time.monotonic() < deadline, counts(cluster, d)
        time.sleep(0.1)


def test_watermark_release_frees_the_coldest_files_first(cluster, proxy, bucket, s3c, mount, tmp_path):
    d, prefix = link(cluster, proxy, bucket)
    datas = {f"f{i}": os.urandom(MiB + i) for i in range(4)}
    for name, data in datas.items():
        with open(mount.path + d + "/" + name, "wb") as f:
            f.write(data)
    run_json(cluster, "repo", "export", d)
    # Used lately, and open now: f3 is the one to keep.
    hold = open(mount.path + d + "/f3", "rb")
    try:
        # A mover of its own whose high watermark is always passed (the
        # targets share this machine's disk): it releases every cold
        # resident file that is not open.
        log = tmp_path / "mover.log"
        mover = subprocess.Popen([bin_path("stria-mover"), "--meta", cluster.meta, "--log", str(log),
                                  "--high-watermark", "0.0001", "--low-watermark", "0.00005"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while counts(cluster, d)["released_files"] < 3:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
        finally:
            mover.terminate()
            mover.wait(timeout=30)
        n = counts(cluster, d)
        assert n["released_files"] == 3 and n["resident_files"] == 1, n
        assert "released" in log.read_text()
    finally:
        hold.close()
    # Released files come back from the bucket, byte for byte.
    for name, data in datas.items():
        out = subprocess.run([bin_path("stria"), "cat", f"{d}/{name}", "--meta", cluster.meta],
                             capture_output=True, timeout=60)
        assert out.returncode == 0 and out.stdout == data, name
    r = subprocess.run([bin_path("stria-mover"), "--meta", cluster.meta, "--high-watermark", "50",
                        "--low-watermark", "60"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "low-watermark" in r.stderr


def test_deletions_are_exported_only_when_the_link_says_so(cluster, proxy, bucket, s3c, mount):
    def exists(key):
        return in_bucket(s3c, bucket, key)

    for flag, gone in ((["--export-deletes"], True), ([], False)):
        prefix = "del-" + uuid.uuid4().hex[:8]
        d = "/" + prefix
        s3c.put_object(Bucket=bucket, Key=f"{prefix}/imported.bin", Body=b"from the bucket")
        cluster.stria("mkdir", d)
        cluster.stria("repo", "link", d, f"s3://{bucket}/{prefix}", "--endpoint", proxy.url, *flag)
        with open(mount.path + d + "/made.bin", "wb") as f:
            f.write(b"made here")
        run_json(cluster, "repo", "export", d)
        with open(mount.path + d + "/never.bin", "wb") as f:
            f.write(b"never exported")
        assert exists(f"{prefix}/made.bin") and exists(f"{prefix}/imported.bin")
        for name in ["made.bin", "imported.bin", "never.bin"]:
            os.unlink(mount.path + d + "/" + name)
        r = run_json(cluster, "repo", "export", d)
        assert r.get("deleted", 0) == (2 if gone else 0), r
        assert exists(f"{prefix}/made.bin") != gone and exists(f"{prefix}/imported.bin") != gone
        assert not exists(f"{prefix}/never.bin")
    # An object put in the bucket again since the file went is left alone.
    prefix = "del-" + uuid.uuid4().hex[:8]
    d = "/" + prefix
    s3c.put_object(Bucket=bucket, Key=f"{prefix}/a.bin", Body=b"one")
    cluster.stria("mkdir", d)
    cluster.stria("repo", "link", d, f"s3://{bucket}/{prefix}", "--endpoint", proxy.url, "--export-deletes")
    cluster.stria("ls", d)
    cluster.stria("rm", d + "/a.bin")
    s3c.put_object(Bucket=bucket, Key=f"{prefix}/a.bin", Body=b"two")
    assert run_json(cluster, "repo", "export", d)["deleted"] == 0
    assert body_of(s3c, bucket, f"{prefix}/a.bin") == b"two"


def test_renames_are_exported_as_the_new_name(cluster, proxy, bucket, s3c, mount):
    def exists(key):
        return in_bucket(s3c, bucket, key)

    for flag, old_gone in ((["--export-deletes"], True), ([], False)):
        prefix = "ren-" + uuid.uuid4().hex[:8]
        d = "/" + prefix
        names = ("a.bin", "b.bin", "c.bin", "x.bin", "y.bin", "r.bin")
        for name in names:
            s3c.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=name.encode() * 1000)
        cluster.stria("mkdir", d)
        cluster.stria("repo", "link", d, f"s3://{bucket}/{prefix}", "--endpoint", proxy.url, *flag)
        run_json(cluster, "repo", "warm", *[d + "/" + n for n in names if n != "r.bin"])
        n = counts(cluster, d)
        assert n["resident_files"] == 5 and n["released_files"] == 1, n
        # A clean file renamed is dirty: the bucket has it under its old name only.
        os.rename(mount.path + d + "/a.bin", mount.path + d + "/a2.bin")
        # One renamed over another: the replaced one's key gets the new bytes.
        os.rename(mount.path + d + "/b.bin", mount.path + d + "/c.bin")
        # Two exchanged (renameat2 RENAME_EXCHANGE): both dirty, no key left empty.
        subprocess.run([sys.executable, "-c",
                        "import ctypes,sys; l=ctypes.CDLL(None,use_errno=True);"
                        "r=l.renameat2(-100,sys.argv[1].encode(),-100,sys.argv[2].encode(),2);"
                        "sys.exit(0 if r==0 else ctypes.get_errno())",
                        mount.path + d + "/x.bin", mount.path + d + "/y.bin"], check=True)
        # A released file is read in from the bucket first: its old key is
        # where its data is.
        os.rename(mount.path + d + "/r.bin", mount.path + d + "/r2.bin")
        n = counts(cluster, d)
        assert n["dirty_files"] == 5 and n["resident_files"] == 0 and n["released_files"] == 0, n
        r = run_json(cluster, "repo", "export", d)
        assert r["files"] == 5 and r["failed"] == 0, r
        assert r.get("deleted", 0) == (3 if old_gone else 0), r   # a, b and r
        assert body_of(s3c, bucket, f"{prefix}/a2.bin") == b"a.bin" * 1000
        assert body_of(s3c, bucket, f"{prefix}/c.bin") == b"b.bin" * 1000
        assert body_of(s3c, bucket, f"{prefix}/x.bin") == b"y.bin" * 1000
        assert body_of(s3c, bucket, f"{prefix}/y.bin") == b"x.bin" * 1000
        assert body_of(s3c, bucket, f"{prefix}/r2.bin") == b"r.bin" * 1000
        for old in ("a.bin", "b.bin", "r.bin"):
            assert exists(f"{prefix}/{old}") != old_gone, old
        n = counts(cluster, d)
        assert n["dirty_files"] == 0 and n["resident_files"] == 5, n


def test_a_renamed_directory_is_exported_under_its_new_name(cluster, proxy, bucket, s3c, mount):
    # Its files stay clean (no walk of the subtree at rename time); export
    # copies each one's object to its new key on the server, released ones
    # included, then deletes the old keys where the link says so.
    for flag, old_gone in ((["--export-deletes"], True), ([], False)):
        bodies = {"dir/a.bin": b"a" * 5000, "dir/sub/b.bin": os.urandom(3 * 1024 * 1024 + 7),
                  "dir/sub/c.bin": b"c" * 10}
        d, prefix = linked_bucket(cluster, proxy, bucket, s3c, "dren", bodies, *flag)
        run_json(cluster, "repo", "warm", d + "/dir/sub/b.bin")   # resident; the others stay released
        os.rename(mount.path + d + "/dir", mount.path + d + "/moved")
        n = counts(cluster, d)
        assert n["dirty_files"] == 0 and n["resident_files"] == 1 and n["released_files"] == 2, n
        assert n["renames"] == 1 and n["renames_exported"] == 0, n
        gets_before = len(object_gets(proxy))
        r = run_json(cluster, "repo", "export", d)
        assert r["files"] == 3 and r["failed"] == 0, r
        assert r.get("deleted", 0) == (3 if old_gone else 0), r
        assert len(object_gets(proxy)) == gets_before   # copied on the server, not through Stria
        for k, body in bodies.items():
            new = "moved/" + k[len("dir/"):]
            assert body_of(s3c, bucket, f"{prefix}/{new}") == body, new
            assert in_bucket(s3c, bucket, f"{prefix}/{k}") != old_gone, k
        n = counts(cluster, d)
        assert n["dirty_files"] == 0 and n["resident_files"] == 1 and n["released_files"] == 2, n
        assert n["renames"] == 1 and n["renames_exported"] == 1, n   # the whole link was walked
        # In place now: nothing more to send.
        r = run_json(cluster, "repo", "export", d)
        assert r["files"] == 0 and r.get("deleted", 0) == 0, r
        # Released files are fetched from their new keys (the old ones may be gone).
        cluster.stria("repo", "release", d + "/moved/sub/b.bin")
        for k, body in bodies.items():
            with open(mount.path + d + "/moved/" + k[len("dir/"):], "rb") as f:
                assert f.read() == body, k


def test_a_moved_released_file_keeps_its_old_key_until_it_is_exported(cluster, proxy, bucket, s3c, mount):
    # A new file under the old name must not overwrite the object the moved
    # (released) file still reads from: an upload there waits for the move.
    old = os.urandom(100000)
    d, prefix = linked_bucket(cluster, proxy, bucket, s3c, "hold", {"dir/x.bin": old}, "--export-deletes")
    os.rename(mount.path + d + "/dir", mount.path + d + "/moved")
    os.mkdir(mount.path + d + "/dir")
    with open(mount.path + d + "/dir/x.bin", "wb") as f:
        f.write(b"new" * 1000)
    # Exporting the new file alone is refused while the old object is the
    # moved file's only copy.
    r = cluster.stria("repo", "export", d + "/dir/x.bin", check=False)
    assert r.returncode != 0 and "still holds the content of released inode" in r.stderr, r.stderr
    assert body_of(s3c, bucket, f"{prefix}/dir/x.bin") == old
    # The whole link: the move goes first, then the upload.
    r = run_json(cluster, "repo", "export", d)
    assert r["files"] == 2 and r["failed"] == 0, r
    assert body_of(s3c, bucket, f"{prefix}/moved/x.bin") == old
    assert body_of(s3c, bucket, f"{prefix}/dir/x.bin") == b"new" * 1000
    with open(mount.path + d + "/moved/x.bin", "rb") as f:
        assert f.read() == old


def test_directories_that_swapped_names_are_both_exported(cluster, proxy, bucket, s3c, mount):
    # Each released file's new key holds the other's content: they wait for
    # one another. The export fetches one of them (its content then needs
    # its old key no longer), copies the other on the server, and uploads
    # the fetched one.
    bodies = {"a/x.bin": os.urandom(30000), "b/x.bin": os.urandom(40000), "a/y.bin": os.urandom(5000)}
    d, prefix = linked_bucket(cluster, proxy, bucket, s3c, "swap", bodies)
    os.rename(mount.path + d + "/a", mount.path + d + "/t")
    os.rename(mount.path + d + "/b", mount.path + d + "/a")
    os.rename(mount.path + d + "/t", mount.path + d + "/b")
    gets_before = len(object_gets(proxy))
    r = run_json(cluster, "repo", "export", d)
    assert r["files"] == 3 and r["failed"] == 0, r
    assert len(object_gets(proxy)) - gets_before == 1   # one of the ring fetched, once
    assert body_of(s3c, bucket, f"{prefix}/a/x.bin") == bodies["b/x.bin"]
    assert body_of(s3c, bucket, f"{prefix}/b/x.bin") == bodies["a/x.bin"]
    assert body_of(s3c, bucket, f"{prefix}/b/y.bin") == bodies["a/y.bin"]
    n = counts(cluster, d)
    assert n["dirty_files"] == 0 and n["resident_files"] == 1 and n["released_files"] == 2, n
    assert n["renames"] == 3 and n["renames_exported"] == 3, n
    cluster.stria("repo", "release", d)
    for name, k in (("a/x.bin", "b/x.bin"), ("b/x.bin", "a/x.bin"), ("b/y.bin", "a/y.bin")):
        with open(mount.path + d + "/" + name, "rb") as f:
            assert f.read() == bodies[k], name


def test_the_mover_exports_directories_that_swapped_names(cluster, proxy, bucket, s3c, mount):
    # The same ring on an auto-exporting link: stria-mover breaks it too.
    bodies = {"a/x.bin": os.urandom(20000), "b/x.bin": os.urandom(25000)}
    d, prefix = linked_bucket(cluster, proxy, bucket, s3c, "mswap", bodies, "--auto-export-delay", "1")
    os.rename(mount.path + d + "/a", mount.path + d + "/t")
    os.rename(mount.path + d + "/b", mount.path + d + "/a")
    os.rename(mount.path + d + "/t", mount.path + d + "/b")
    deadline = time.monotonic() + 60
    while counts(cluster, d)["renames_exported"] != 3:
        assert time.monotonic() < deadline, f"not exported within 60 s: {counts(cluster, d)}"
        time.sleep(0.2)
    assert body_of(s3c, bucket, f"{prefix}/a/x.bin") == bodies["b/x.bin"]
    assert body_of(s3c, bucket, f"{prefix}/b/x.bin") == bodies["a/x.bin"]
    n = counts(cluster, d)
    assert n["dirty_files"] == 0 and n["resident_files"] == 1 and n["released_files"] == 1, n
    with open(mount.path + d + "/a/x.bin", "rb") as f:
        assert f.read() == bodies["b/x.bin"]


def test_a_resident_file_whose_old_key_another_takes_is_dirty(cluster, proxy, bucket, s3c, mount):
    # A resident file renamed away still had its bucket copy at its old key.
    # A new file exported there overwrites it: the first file is dirty then,
    # so it is not released without its content in the bucket.
    old = os.urandom(50000)
    d, prefix = linked_bucket(cluster, proxy, bucket, s3c, "taken", {"dir/x.bin": old})
    run_json(cluster, "repo", "warm", d + "/dir/x.bin")
    os.rename(mount.path + d + "/dir", mount.path + d + "/moved")
    os.mkdir(mount.path + d + "/dir")
    with open(mount.path + d + "/dir/x.bin", "wb") as f:
        f.write(b"new" * 1000)
    r = run_json(cluster, "repo", "export", d + "/dir/x.bin")
    assert r["files"] == 1 and r["failed"] == 0, r
    assert body_of(s3c, bucket, f"{prefix}/dir/x.bin") == b"new" * 1000
    n = counts(cluster, d)
    assert n["dirty_files"] == 1 and n["resident_files"] == 1, n
    r = run_json(cluster, "repo", "release", d)
    assert r["files"] == 1, r   # the new file only
    r = run_json(cluster, "repo", "export", d)
    assert r["files"] == 1 and r["bytes"] == len(old) and r["failed"] == 0, r
    assert body_of(s3c, bucket, f"{prefix}/moved/x.bin") == old
    cluster.stria("repo", "release", d)
    with open(mount.path + d + "/moved/x.bin", "rb") as f:
        assert f.read() == old
    with open(mount.path + d + "/dir/x.bin", "rb") as f:
        assert f.read() == b"new" * 1000


def test_sync_brings_back_no_file_removed_or_renamed_here(cluster, proxy, bucket, s3c, mount):
    # Until the export, the bucket still has their objects: a sync in
    # between must not take them for new ones. A renamed directory is
    # compared with the level its new name names.
    d, prefix = linked_bucket(cluster, proxy, bucket, s3c, "resync",
                              {key: key.encode() for key in ("gone.txt", "old.txt", "dir/in.txt")}, "--export-deletes")
    os.unlink(mount.path + d + "/gone.txt")
    cluster.stria("cat", d + "/old.txt")                      # resident: a rename needs its data here
    os.rename(mount.path + d + "/old.txt", mount.path + d + "/new.txt")
    os.rename(mount.path + d + "/dir", mount.path + d + "/dir2")   # in.txt keeps its key, released
    s3c.put_object(Bucket=bucket, Key=f"{prefix}/dir2/other.txt", Body=b"other")   # someone else's
    r = run_json(cluster, "repo", "sync", d)
    assert r["created"] == 1 and r["skipped"] == 3, r   # other.txt; not gone.txt, old.txt, nor the prefix dir/
    assert sorted(os.listdir(mount.path + d)) == ["dir2", "new.txt"]
    assert sorted(os.listdir(mount.path + d + "/dir2")) == ["in.txt", "other.txt"]
    r = run_json(cluster, "repo", "export", d)
    assert r["files"] == 2 and r["deleted"] == 3, r
    assert body_of(s3c, bucket, f"{prefix}/dir2/in.txt") == b"dir/in.txt"
    assert not in_bucket(s3c, bucket, f"{prefix}/gone.txt") and not in_bucket(s3c, bucket, f"{prefix}/old.txt")
    r = run_json(cluster, "repo", "sync", d)
    assert r["created"] == 0 and r["removed"] == 0, r
    # Once the moves are exported, the old name is a level like any other.
    s3c.put_object(Bucket=bucket, Key=f"{prefix}/dir/fresh.txt", Body=b"fresh")
    r = run_json(cluster, "repo", "sync", d)
    assert r["created"] == 1 and r["removed"] == 0, r
    assert sorted(os.listdir(mount.path + d)) == ["dir", "dir2", "new.txt"]
    assert os.listdir(mount.path + d + "/dir") == ["fresh.txt"]
    for name, body in (("in.txt", b"dir/in.txt"), ("other.txt", b"other")):
        with open(mount.path + d + "/dir2/" + name, "rb") as f:
            assert f.read() == body
    s3c.delete_object(Bucket=bucket, Key=f"{prefix}/dir2/other.txt")
    r = run_json(cluster, "repo", "sync", d)
    assert r["removed"] == 1, r
    assert os.listdir(mount.path + d + "/dir2") == ["in.txt"]


def test_mover_backs_off_from_a_moved_file_it_cannot_copy(cluster, proxy, bucket, s3c, mount):
    # A moved released file whose old object changed in the bucket cannot be
    # copied (its content is nowhere now: `repo sync` refreshes it). The
    # mover says so, then waits longer each time instead of every round.
    d, prefix = linked_bucket(cluster, proxy, bucket, s3c, "stuck", {"dir/x.bin": b"first"},
                              "--auto-export-delay", "1")
    s3c.put_object(Bucket=bucket, Key=f"{prefix}/dir/x.bin", Body=b"second")
    os.rename(mount.path + d + "/dir", mount.path + d + "/moved")
    log = glob.glob(cluster.dir + "/mover/*.log")[0]
    mine = lambda: [line for line in open(log) if f"{d}/moved/x.bin" in line]  # noqa: E731
    deadline = time.monotonic() + 15
    while not mine():
        assert time.monotonic() < deadline, "no warning from the mover"
        time.sleep(0.2)
    time.sleep(4)   # rounds run every second; the next try is 5 s later
    assert len(mine()) == 1, mine()
    assert "ESTALE" in mine()[0] or "412" in mine()[0], mine()[0]
    assert not in_bucket(s3c, bucket, f"{prefix}/moved/x.bin")
    n = counts(cluster, d)
    assert n["renames"] == 1 and n["renames_exported"] == 0, n
