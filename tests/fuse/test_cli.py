"""System tests of the `stria` command line (src/cli/main.cc) against a real
local cluster: put/get/cat, the namespace commands, layouts, df and cluster
status, and the errors: exit status and a message that names the path and
the cause. One cluster for the module; each test works in a fresh directory
of its own."""
import concurrent.futures
import json
import os
import re
import socket
import stat as pystat
import subprocess
import uuid

import pytest

from conftest import Cluster, Mount, bin_path

MiB = 1 << 20
STRIPE_1M = 1 << 20   # the layout of a file under a directory with no default


def run(*args, meta=None, env=None, input=None, timeout=60):
    """Runs `stria ARGS [--meta META]` and returns the CompletedProcess with
    stdout as bytes and stderr as text. env replaces STRIA_META handling:
    by default STRIA_META is removed so that only --meta counts."""
    e = dict(os.environ)
    e.pop("STRIA_META", None)
    if env:
        e.update(env)
    cmd = [bin_path("stria"), *args]
    if meta is not None:
        cmd += ["--meta", meta]
    r = subprocess.run(cmd, capture_output=True, input=input, env=e, timeout=timeout)
    r.stderr = r.stderr.decode(errors="replace")
    return r


class Cli:
    """The command line pointed at one cluster."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.meta = cluster.meta

    def __call__(self, *args, input=None):
        """Runs a command that must succeed; returns its stdout (bytes)."""
        r = run(*args, meta=self.meta, input=input)
        assert r.returncode == 0, f"stria {' '.join(args)} exited {r.returncode}: {r.stderr}"
        return r.stdout

    def text(self, *args):
        return self(*args).decode()

    def json(self, *args):
        return json.loads(self(*args, "--json"))

    def fails(self, *args, rc=1):
        """Runs a command that must fail with exit status rc (1: the
        operation failed; 2: the command line did not parse); returns its
        stderr."""
        r = run(*args, meta=self.meta)
        assert r.returncode == rc, (f"stria {' '.join(args)}: expected exit {rc}, got "
                                    f"{r.returncode}; stdout {r.stdout[:200]!r} stderr {r.stderr!r}")
        assert r.stderr.strip(), f"stria {' '.join(args)} failed without a message"
        return r.stderr

    def exists(self, path):
        r = run("stat", path, meta=self.meta)
        if r.returncode == 0:
            return True
        assert "ENOENT" in r.stderr, r.stderr
        return False


@pytest.fixture(scope="module")
def cl():
    c = Cluster(stores=3)
    yield c
    c.down()


@pytest.fixture
def cli(cl):
    return Cli(cl)


@pytest.fixture
def d(cli):
    """A fresh directory for one test. It stays: the module's cluster goes,
    with all its data, at the end (and each command costs time)."""
    path = f"/cli-{uuid.uuid4().hex[:12]}"
    cli("mkdir", path)
    return path


@pytest.fixture(scope="module")
def errdir(cl):
    """A directory for the tests of failing commands, which change nothing:
    it holds one file, `exists`."""
    c = Cli(cl)
    path = "/errors"
    c("mkdir", path)
    c("put", "-", f"{path}/exists", input=b"e")
    return path


def assert_unchanged(cli, errdir):
    assert [(e["name"], e["nlink"], e["size"]) for e in cli.json("ls", errdir)] == \
        [("exists", 1, 1)]


def local_file(tmp_path, data, name=None):
    p = tmp_path / (name or f"in-{uuid.uuid4().hex[:8]}")
    p.write_bytes(data)
    return str(p)


def assert_error(stderr, cmd, *needles):
    """The message is `stria CMD: ERRNO: ...` and names every needle."""
    assert stderr.startswith(f"stria {cmd}: "), stderr
    for n in needles:
        assert n in stderr, f"{n!r} not in {stderr!r}"


# ---------------------------------------------------------- put / get / cat --

@pytest.mark.parametrize("size", [0, 1, 4095, 4096 + 7, 3 * MiB, 7 * MiB + 12345],
                         ids=["empty", "1B", "4095B", "4103B", "3MiB", "7MiB+"])
def test_put_get_cat_roundtrip(cli, d, tmp_path, size):
    data = os.urandom(size)
    src = local_file(tmp_path, data)
    path = f"{d}/f"
    assert cli("put", src, path) == b""
    assert cli.json("stat", path)["size"] == size
    out = tmp_path / "out"
    cli("get", path, str(out))
    assert out.read_bytes() == data
    assert cli("cat", path) == data
    assert cli("get", path, "-") == data
    if size > STRIPE_1M:
        # The default layout stripes 1 MiB over every target: the file spans
        # them all.
        lay = cli.json("getstripe", path)
        assert lay["stripe_size"] == STRIPE_1M and lay["stripe_count"] == 3


def test_put_narrow_stripes_roundtrip(cli, d, tmp_path):
    # 64 KiB stripes over 3 targets: a 2.5 MiB file wraps around the targets
    # many times, and an unaligned tail ends mid-stripe.
    path = f"{d}/narrow"
    cli("setstripe", "-c", "3", "-S", "64k", path)
    data = os.urandom(5 * MiB // 2 + 777)
    cli("put", local_file(tmp_path, data), path)
    assert cli("cat", path) == data
    lay = cli.json("getstripe", path)
    assert (lay["stripe_count"], lay["stripe_size"]) == (3, 64 << 10)


def test_put_from_stdin_and_overwrite_truncates(cli, d, tmp_path):
    path = f"{d}/f"
    big = os.urandom(2 * MiB + 3)
    cli("put", "-", path, input=big)
    assert cli("cat", path) == big
    # put replaces the whole file: a shorter one leaves no old tail.
    cli("put", "-", path, input=b"short\n")
    assert cli("cat", path) == b"short\n"
    assert cli.json("stat", path)["size"] == 6
    cli("put", local_file(tmp_path, b""), path)
    assert cli("cat", path) == b""


def test_get_overwrites_local_file(cli, d, tmp_path):
    path = f"{d}/f"
    cli("put", "-", path, input=b"abc")
    out = tmp_path / "out"
    out.write_bytes(b"x" * 10000)
    cli("get", path, str(out))
    assert out.read_bytes() == b"abc"


# ------------------------------------------------------------ mkdir and ls --

def test_mkdir_p_and_ls(cli, d):
    cli("mkdir", "-p", f"{d}/a/b/c")
    cli("mkdir", "-p", f"{d}/a/b/c")            # exists: no error with -p
    cli("mkdir", "-p", f"{d}/a/b/c/")           # a trailing slash too
    assert cli.json("stat", f"{d}/a/b/c")["type"] == "directory"
    err = cli.fails("mkdir", f"{d}/a")           # without -p it is an error
    assert_error(err, "mkdir", "EEXIST", f"{d}/a")
    cli("mkdir", f"{d}/a/x")
    cli("put", "-", f"{d}/a/0file", input=b"12345")
    # Sorted by name, one a line.
    assert cli.text("ls", f"{d}/a").splitlines() == ["0file", "b", "x"]
    assert cli.text("ls", f"{d}/a/b/c") == ""    # empty directory
    assert d.lstrip("/") in cli.text("ls").splitlines()   # default: /
    assert d.lstrip("/") in cli.text("ls", "/").splitlines()


def test_mkdir_p_root_and_relative(cli):
    cli("mkdir", "-p", "/")
    err = cli.fails("mkdir", "-p", "rel/x")
    assert_error(err, "mkdir", "EINVAL", "rel", "absolute")
    err = cli.fails("ls", "rel")
    assert_error(err, "ls", "EINVAL", "rel", "absolute")


def test_ls_long(cli, d):
    cli("put", "-", f"{d}/file", input=b"x" * 1234)
    cli("mkdir", f"{d}/dir")
    cli("ln", "-s", f"{d}/file", f"{d}/sym")
    rows = {}
    for line in cli.text("ls", "-l", d).splitlines():
        f = line.split()
        # mode nlink uid gid size date time name
        assert len(f) == 8, line
        assert re.fullmatch(r"[-dl][-r][-w][-x][-r][-w][-x][-r][-w][-x]", f[0]), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", f[5]) and re.fullmatch(r"\d\d:\d\d:\d\d", f[6]), line
        rows[f[7]] = f
    assert sorted(rows) == ["dir", "file", "sym"]
    assert rows["file"][0] == "-rw-r--r--" and rows["file"][1] == "1" and rows["file"][4] == "1234"
    assert rows["file"][2:4] == [str(os.getuid()), str(os.getgid())]
    assert rows["dir"][0].startswith("d")
    assert rows["sym"][0] == "lrwxrwxrwx"
    assert rows["sym"][4] == str(len(f"{d}/file"))
    # A file argument lists that file alone, under the name given.
    f = cli.text("ls", "-l", f"{d}/file").split()
    assert f[0] == "-rw-r--r--" and f[4] == "1234" and f[7] == f"{d}/file"
    assert cli.text("ls", f"{d}/file").splitlines() == [f"{d}/file"]


def test_ls_json(cli, d, tmp_path):
    sizes = {"a": 0, "b": 100, "c": 3 * MiB + 1}
    for name, n in sizes.items():
        cli("put", local_file(tmp_path, os.urandom(n)), f"{d}/{name}")
    cli("mkdir", f"{d}/sub")
    cli("ln", "-s", "a", f"{d}/link")
    entries = cli.json("ls", d)
    assert isinstance(entries, list)
    assert [e["name"] for e in entries] == ["a", "b", "c", "link", "sub"]
    by = {e["name"]: e for e in entries}
    for name, n in sizes.items():
        e = by[name]
        assert e["type"] == "file" and e["size"] == n and e["nlink"] == 1
        assert e["mode"] & 0o7777 == 0o644
        assert e["uid"] == os.getuid() and e["gid"] == os.getgid()
        assert e["mtime_ns"] > 0 and e["ctime_ns"] > 0 and e["atime_ns"] > 0
    assert by["sub"]["type"] == "directory" and by["sub"]["nlink"] == 2
    assert by["link"]["type"] == "symlink" and by["link"]["size"] == 1
    assert len({e["ino"] for e in entries}) == 5
    # The same inodes as stat's.
    for e in entries:
        assert cli.json("stat", f"{d}/{e['name']}")["ino"] == e["ino"]
    # -l with --json is JSON; a file argument is one entry named as given.
    assert json.loads(cli("ls", "-l", "--json", d)) == entries
    one = cli.json("ls", f"{d}/b")
    assert len(one) == 1 and one[0]["name"] == f"{d}/b" and one[0]["size"] == 100
    assert cli.json("ls", f"{d}/sub") == []


def test_ls_and_rm_r_span_readdir_pages(cl, cli, d):
    # More entries than one readdir page (1024): ls must follow the cookies
    # to the end, each name once; rm -r must remove them all. They are made
    # through a mount, much faster than a process each, and are symlinks,
    # one call to stria-meta each (their size tells them apart).
    n = 1030
    m = Mount(cl)
    try:
        base = os.path.join(m.path, d.lstrip("/"), "big")
        os.mkdir(base)

        def make(i):
            os.symlink("t" * (1 + i % 50), os.path.join(base, f"f{i:05d}"))

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(make, range(n)))
    finally:
        m.close()
    names = cli.text("ls", f"{d}/big").splitlines()
    assert names == [f"f{i:05d}" for i in range(n)]
    entries = cli.json("ls", f"{d}/big")
    assert [e["name"] for e in entries] == names
    assert all(e["type"] == "symlink" and e["size"] == 1 + i % 50 for i, e in enumerate(entries))
    assert len(cli.text("ls", "-l", f"{d}/big").splitlines()) == n
    cli("rm", "-r", f"{d}/big")
    assert not cli.exists(f"{d}/big")
    assert cli.text("ls", d) == ""


# -------------------------------------------------------------------- stat --

def test_stat_text_and_json(cli, d):
    cli("put", "-", f"{d}/f", input=b"hello")
    j = cli.json("stat", f"{d}/f")
    assert j["path"] == f"{d}/f"
    assert j["type"] == "file" and j["size"] == 5 and j["nlink"] == 1
    assert j["mode"] == 0o644 and j["uid"] == os.getuid() and j["gid"] == os.getgid()
    assert j["ino"] > 1 and j["version"] >= 1
    assert set(j) >= {"ino", "type", "mode", "uid", "gid", "size", "nlink",
                      "atime_ns", "mtime_ns", "ctime_ns", "version", "path"}
    t = cli.text("stat", f"{d}/f")
    fields = dict(re.findall(r"^\s*(\w+): (.*)$", t, re.M))
    assert fields["File"] == f"{d}/f"
    assert fields["Type"] == "file"
    assert fields["Size"] == "5"
    assert fields["Mode"] == "-rw-r--r-- (0644)"
    assert fields["Links"] == "1"
    assert fields["Inode"] == str(j["ino"])
    # Directories, and the root.
    dj = cli.json("stat", d)
    assert dj["type"] == "directory" and dj["mode"] == 0o755
    rj = cli.json("stat", "/")
    assert rj["type"] == "directory" and rj["ino"] == 1
    assert "Type: directory" in cli.text("stat", "/")


def test_stat_does_not_follow_symlinks(cli, d):
    cli("put", "-", f"{d}/f", input=b"0123456789")
    cli("ln", "-s", f"{d}/f", f"{d}/l")
    j = cli.json("stat", f"{d}/l")
    assert j["type"] == "symlink" and j["size"] == len(f"{d}/f")
    assert pystat.S_IMODE(j["mode"]) == 0o777
    assert "Type: symlink" in cli.text("stat", f"{d}/l")


# ---------------------------------------------------------------------- mv --

def test_mv_rename_and_into_another_directory(cli, d):
    data = os.urandom(MiB + 5)
    cli("put", "-", f"{d}/a", input=data)
    ino = cli.json("stat", f"{d}/a")["ino"]
    cli("mv", f"{d}/a", f"{d}/b")
    assert not cli.exists(f"{d}/a")
    assert cli.json("stat", f"{d}/b")["ino"] == ino
    assert cli("cat", f"{d}/b") == data
    # Into another directory: the target is the new name (mv is rename(2)).
    cli("mkdir", f"{d}/sub")
    cli("mv", f"{d}/b", f"{d}/sub/c")
    assert cli.text("ls", d).splitlines() == ["sub"]
    assert cli.text("ls", f"{d}/sub").splitlines() == ["c"]
    assert cli("cat", f"{d}/sub/c") == data
    # A directory moves with its contents.
    cli("mkdir", f"{d}/other")
    cli("mv", f"{d}/sub", f"{d}/other/sub2")
    assert cli("cat", f"{d}/other/sub2/c") == data
    # Onto an existing file: replaces it.
    cli("put", "-", f"{d}/x", input=b"new")
    cli("mv", f"{d}/x", f"{d}/other/sub2/c")
    assert cli("cat", f"{d}/other/sub2/c") == b"new"
    assert not cli.exists(f"{d}/x")


def test_mv_errors(cli, d):
    cli("put", "-", f"{d}/f", input=b"x")
    cli("mkdir", "-p", f"{d}/dir/inner")
    err = cli.fails("mv", f"{d}/f", f"{d}/dir")          # a file onto a directory
    assert_error(err, "mv", "EISDIR", f"{d}/dir")
    err = cli.fails("mv", f"{d}/dir", f"{d}/dir/inner/x")  # into its own subtree
    assert_error(err, "mv", "EINVAL", f"{d}/dir")
    cli("mkdir", f"{d}/empty")
    err = cli.fails("mv", f"{d}/empty", f"{d}/dir")     # onto a non-empty directory
    assert_error(err, "mv", "ENOTEMPTY", f"{d}/dir")
    assert cli("cat", f"{d}/f") == b"x"
    assert cli.text("ls", f"{d}/dir") == "inner\n"


# ---------------------------------------------------------------------- ln --

def test_ln_hard_link(cli, d):
    data = os.urandom(100000)
    cli("put", "-", f"{d}/f", input=data)
    cli("ln", f"{d}/f", f"{d}/h")
    a, b = cli.json("stat", f"{d}/f"), cli.json("stat", f"{d}/h")
    assert a["ino"] == b["ino"]
    assert a["nlink"] == b["nlink"] == 2
    assert cli("cat", f"{d}/h") == data
    by = {e["name"]: e for e in cli.json("ls", d)}
    assert by["f"]["nlink"] == by["h"]["nlink"] == 2
    # Written through one name, read through the other.
    cli("put", "-", f"{d}/h", input=b"through h")
    assert cli("cat", f"{d}/f") == b"through h"
    cli("rm", f"{d}/f")
    assert cli.json("stat", f"{d}/h")["nlink"] == 1
    assert cli("cat", f"{d}/h") == b"through h"


def test_ln_errors(cli, d):
    cli("put", "-", f"{d}/f", input=b"x")
    cli("put", "-", f"{d}/g", input=b"y")
    cli("mkdir", f"{d}/dir")
    err = cli.fails("ln", f"{d}/f", f"{d}/g")
    assert_error(err, "ln", "EEXIST", f"{d}/g")
    err = cli.fails("ln", "-s", "anything", f"{d}/g")
    assert_error(err, "ln", "EEXIST", f"{d}/g")
    err = cli.fails("ln", f"{d}/dir", f"{d}/dirlink")    # no hard links to directories
    assert_error(err, "ln", "EPERM", f"{d}/dir")
    assert cli("cat", f"{d}/g") == b"y"
    assert cli.json("stat", f"{d}/f")["nlink"] == 1


def test_ln_symlink(cli, d):
    cli("put", "-", f"{d}/f", input=b"target data")
    cli("ln", "-s", f"{d}/f", f"{d}/abs")
    cli("ln", "-s", "f", f"{d}/rel")
    cli("ln", "-s", f"{d}/nowhere", f"{d}/dangling")   # a dangling one is fine
    for name, target in [("abs", f"{d}/f"), ("rel", "f"), ("dangling", f"{d}/nowhere")]:
        j = cli.json("stat", f"{d}/{name}")
        assert j["type"] == "symlink" and j["size"] == len(target), (name, j)
    # Reads follow the link; ls of a link lists what it points to.
    assert cli("cat", f"{d}/abs") == b"target data"
    assert cli("cat", f"{d}/rel") == b"target data"
    assert cli.json("ls", f"{d}/abs")[0]["type"] == "file"
    err = cli.fails("cat", f"{d}/dangling")
    assert_error(err, "cat", "ENOENT", f"{d}/dangling")
    # A symlink to a directory lists the directory.
    cli("mkdir", f"{d}/dir")
    cli("put", "-", f"{d}/dir/inside", input=b"")
    cli("ln", "-s", f"{d}/dir", f"{d}/dirlink")
    assert cli.text("ls", f"{d}/dirlink") == "inside\n"
    # rm removes the link, never its target.
    cli("rm", f"{d}/abs")
    assert not cli.exists(f"{d}/abs")
    assert cli("cat", f"{d}/f") == b"target data"


# ---------------------------------------------------------------------- rm --

def test_rm_file_and_directory_without_r(cli, d):
    cli("put", "-", f"{d}/f", input=b"x")
    cli("rm", f"{d}/f")
    assert not cli.exists(f"{d}/f")
    cli("mkdir", f"{d}/full")
    cli("put", "-", f"{d}/full/keep", input=b"keep")
    cli("mkdir", f"{d}/empty")
    for dir_ in (f"{d}/full", f"{d}/empty"):
        err = cli.fails("rm", dir_)
        assert_error(err, "rm", "EISDIR", dir_)
    assert cli("cat", f"{d}/full/keep") == b"keep"
    assert cli.json("stat", f"{d}/empty")["type"] == "directory"
    err = cli.fails("rm", "/")
    assert_error(err, "rm", "EINVAL", "/")


def test_rm_r_tree(cli, d, tmp_path):
    t = f"{d}/tree"
    cli("mkdir", "-p", f"{t}/a/b/c")
    cli("mkdir", "-p", f"{t}/e")
    for p in ("top", "a/f1", "a/b/f2", "a/b/c/f3"):
        cli("put", "-", f"{t}/{p}", input=os.urandom(5000))
    cli("put", local_file(tmp_path, os.urandom(2 * MiB)), f"{t}/a/big")
    # Links out of the tree: rm -r removes the links, not their targets.
    cli("mkdir", f"{d}/outside")
    cli("put", "-", f"{d}/outside/o", input=b"outside")
    cli("ln", "-s", f"{d}/outside", f"{t}/a/dirlink")
    cli("ln", f"{d}/outside/o", f"{t}/e/hard")
    cli("rm", "-r", t)
    assert not cli.exists(t)
    assert cli.text("ls", d) == "outside\n"
    assert cli("cat", f"{d}/outside/o") == b"outside"
    assert cli.json("stat", f"{d}/outside/o")["nlink"] == 1
    # rm -r of a single file works too.
    cli("rm", "-r", f"{d}/outside/o")
    assert cli.text("ls", f"{d}/outside") == ""


# ------------------------------------------------------- setstripe / getstripe --

def target_ids(cli):
    return {t["target"] for t in cli.json("df")}


def test_setstripe_file(cli, d, tmp_path):
    path = f"{d}/f"
    # A missing path: setstripe makes an empty file with that layout.
    cli("setstripe", "-c", "2", "-S", "64k", path)
    st = cli.json("stat", path)
    assert st["type"] == "file" and st["size"] == 0
    lay = cli.json("getstripe", path)
    assert lay["path"] == path and lay["is_default"] is False
    assert lay["stripe_count"] == 2 and lay["stripe_size"] == 64 << 10
    assert len(lay["targets"]) == 2 and len(set(lay["targets"])) == 2
    assert set(lay["targets"]) <= target_ids(cli)
    assert lay["object_id"] > 0
    # The text form says the same.
    t = cli.text("getstripe", path)
    assert t.splitlines()[0] == path
    assert re.search(r"^\s*stripe_count: 2$", t, re.M), t
    assert re.search(r"^\s*stripe_size:\s+65536$", t, re.M), t
    tline = re.search(r"^\s*targets:\s+(.*)$", t, re.M)
    assert tline and [int(x) for x in tline.group(1).split()] == lay["targets"], t
    # An empty file may be re-striped; data keeps the layout it was put with.
    cli("setstripe", "-c", "1", "-S", "128k", path)
    lay = cli.json("getstripe", path)
    assert (lay["stripe_count"], lay["stripe_size"], len(lay["targets"])) == (1, 128 << 10, 1)
    data = os.urandom(MiB + 4321)
    cli("put", local_file(tmp_path, data), path)
    assert cli.json("getstripe", path)["stripe_count"] == 1
    assert cli("cat", path) == data
    # Once it holds data, the layout is fixed.
    err = cli.fails("setstripe", "-c", "3", path)
    assert_error(err, "setstripe", "EBUSY", path)
    assert cli.json("getstripe", path)["stripe_count"] == 1


def test_setstripe_count_zero_means_all_targets(cli, d):
    cli("setstripe", "-c", "0", "-S", "1M", f"{d}/all")
    lay = cli.json("getstripe", f"{d}/all")
    assert lay["stripe_count"] == 3 and set(lay["targets"]) == target_ids(cli)
    # More than there are: never more stripes than targets.
    cli("setstripe", "-c", "5", f"{d}/five")
    lay = cli.json("getstripe", f"{d}/five")
    assert lay["stripe_count"] == len(lay["targets"]) == len(set(lay["targets"])) <= 3


def test_setstripe_directory_default_is_inherited(cli, d, tmp_path):
    sub = f"{d}/train"
    cli("mkdir", sub)
    lay = cli.json("getstripe", sub)
    assert lay["is_default"] is True
    assert (lay["stripe_count"], lay["stripe_size"]) == (0, 0)
    assert "no default layout" in cli.text("getstripe", sub)
    cli("setstripe", "-c", "2", "-S", "256k", sub)
    lay = cli.json("getstripe", sub)
    assert lay["is_default"] is True and lay["path"] == sub
    assert (lay["stripe_count"], lay["stripe_size"]) == (2, 256 << 10)
    t = cli.text("getstripe", sub)
    assert re.search(r"default stripe_count: 2$", t, re.M), t
    assert re.search(r"default stripe_size:\s+262144$", t, re.M), t
    # New files under it take the default: by put, and by setstripe with
    # no values of its own.
    data = os.urandom(3 * MiB + 1)
    cli("put", local_file(tmp_path, data), f"{sub}/shard")
    cli("setstripe", f"{sub}/empty")
    for f in (f"{sub}/shard", f"{sub}/empty"):
        fl = cli.json("getstripe", f)
        assert fl["is_default"] is False
        assert (fl["stripe_count"], fl["stripe_size"], len(fl["targets"])) == (2, 256 << 10, 2)
    assert cli("cat", f"{sub}/shard") == data
    # A value given overrides that one alone; the other comes from the default.
    cli("setstripe", "-c", "1", f"{sub}/one")
    fl = cli.json("getstripe", f"{sub}/one")
    assert (fl["stripe_count"], fl["stripe_size"], len(fl["targets"])) == (1, 256 << 10, 1)
    # Files elsewhere keep the cluster's default.
    cli("put", "-", f"{d}/plain", input=b"x")
    fl = cli.json("getstripe", f"{d}/plain")
    assert (fl["stripe_count"], fl["stripe_size"]) == (3, STRIPE_1M)


# ------------------------------------------------------- df and cluster status --

def test_df(cl, cli):
    targets = cli.json("df")
    assert len(targets) == 3
    assert sorted(t["target"] for t in targets) == sorted({t["target"] for t in targets})
    assert len({t["store"] for t in targets}) == 3
    for t in targets:
        assert t["up"] is True
        assert t["capacity"] > 0
        assert 0 <= t["used"] <= t["capacity"]
        host, port = t["address"].rsplit(":", 1)
        assert host == "127.0.0.1" and 0 < int(port) < 65536
        assert t["path"].startswith(cl.dir) and os.path.isdir(t["path"])
    text = cli.text("df").splitlines()
    assert text[0].split() == ["TARGET", "STORE", "ADDRESS", "SIZE", "USED", "AVAIL", "USE%",
                               "STATE", "PATH"]
    rows = {int(line.split()[0]): line for line in text[1:-1]}
    assert sorted(rows) == sorted(t["target"] for t in targets)
    for t in targets:
        line = rows[t["target"]]
        assert " up " in line and line.endswith(t["path"]) and t["address"] in line
        assert re.search(r"\b\d+%", line)
    assert text[-1].split()[0] == "total"


def test_cluster_status(cl, cli):
    cs = cli.json("cluster", "status")
    assert cs["healthy"] is True
    assert cs["meta"] == cl.meta
    assert cs["map_version"] >= 1
    assert len(cs["stores"]) == 3 and all(s["up"] for s in cs["stores"])
    assert len(cs["targets"]) == 3 and all(t["up"] for t in cs["targets"])
    assert {t["store"] for t in cs["targets"]} == {s["id"] for s in cs["stores"]}
    assert {t["id"] for t in cs["targets"]} == target_ids(cli)
    text = cli.text("cluster", "status")
    assert text.splitlines()[0].startswith(f"meta {cl.meta} ")
    assert sum(1 for line in text.splitlines() if re.match(r"store \d+ \S+ up ", line)) == 3
    assert "3 of 3 targets up" in text


def test_local_status(cl):
    r = run("local", "status", "--dir", cl.dir, "--json")
    assert r.returncode == 0, r.stderr
    procs = json.loads(r.stdout)
    assert sorted(p["name"] for p in procs) == ["meta", "mover", "store-0", "store-1", "store-2"]
    assert all(p["running"] and p["pid"] > 0 for p in procs)
    assert next(p for p in procs if p["name"] == "meta")["listen"] == cl.meta


# ------------------------------------------------------------------ errors --

# Every command on a missing name: exit 1, and `stria CMD: ENOENT: ...`
# naming the path.
MISSING_LEAF = [
    ("cat", ["cat", "{m}"]),
    ("get", ["get", "{m}", "{local}"]),
    ("get", ["get", "{m}", "-"]),
    ("ls", ["ls", "{m}"]),
    ("ls", ["ls", "-l", "{m}"]),
    ("ls", ["ls", "--json", "{m}"]),
    ("stat", ["stat", "{m}"]),
    ("stat", ["stat", "--json", "{m}"]),
    ("rm", ["rm", "{m}"]),
    ("rm", ["rm", "-r", "{m}"]),
    ("mv", ["mv", "{m}", "{d}/to"]),
    ("ln", ["ln", "{m}", "{d}/to"]),
    ("getstripe", ["getstripe", "{m}"]),
    ("getstripe", ["getstripe", "--json", "{m}"]),
]
# Commands that create a name, under a missing directory: the message names
# that directory.
MISSING_PARENT = [
    ("put", ["put", "{src}", "{p}/x"]),
    ("mkdir", ["mkdir", "{p}/x"]),
    ("setstripe", ["setstripe", "-c", "1", "{p}/x"]),
    ("mv", ["mv", "{d}/exists", "{p}/x"]),
    ("ln", ["ln", "{d}/exists", "{p}/x"]),
    ("ln", ["ln", "-s", "{d}/exists", "{p}/x"]),
    ("rm", ["rm", "-r", "{p}/x"]),
    ("ls", ["ls", "{p}/x"]),
]


def _ids(cases):
    return [" ".join(a).replace("{", "").replace("}", "") for _, a in cases]


@pytest.mark.parametrize("cmd,args", MISSING_LEAF, ids=_ids(MISSING_LEAF))
def test_missing_path_fails_naming_it(cli, errdir, tmp_path, cmd, args):
    m = f"{errdir}/missing"
    local = tmp_path / "out"
    r = run(*[a.format(m=m, d=errdir, local=local) for a in args], meta=cli.meta)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stdout == b""
    assert_error(r.stderr, cmd, "ENOENT", m)
    assert r.stderr.count(m) == 1, r.stderr   # named once, not once per layer
    assert not local.exists()          # get made no local file
    assert_unchanged(cli, errdir)      # and nothing changed in Stria


@pytest.mark.parametrize("cmd,args", MISSING_PARENT, ids=_ids(MISSING_PARENT))
def test_missing_directory_fails_naming_it(cli, errdir, tmp_path, cmd, args):
    p = f"{errdir}/nodir"
    src = local_file(tmp_path, b"data")
    r = run(*[a.format(p=p, d=errdir, src=src) for a in args], meta=cli.meta)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert_error(r.stderr, cmd, "ENOENT", p)
    assert_unchanged(cli, errdir)


def test_not_a_directory(cli, d):
    cli("put", "-", f"{d}/f", input=b"x")
    err = cli.fails("mkdir", f"{d}/f/x")
    assert_error(err, "mkdir", "ENOTDIR", f"{d}/f")
    err = cli.fails("put", "-", f"{d}/f/x")
    assert_error(err, "put", "ENOTDIR", f"{d}/f")
    err = cli.fails("cat", d)
    assert_error(err, "cat", "EISDIR", d)
    err = cli.fails("put", "-", d)
    assert_error(err, "put", "EISDIR", d.rsplit("/", 1)[1])


def test_local_file_errors_name_the_local_path(cli, d, tmp_path):
    missing = str(tmp_path / "no-such-local")
    err = cli.fails("put", missing, f"{d}/f")
    assert_error(err, "put", "ENOENT", missing, "No such file")
    assert not cli.exists(f"{d}/f")
    cli("put", "-", f"{d}/f", input=b"x")
    bad = str(tmp_path / "no-such-dir" / "out")
    err = cli.fails("get", f"{d}/f", bad)
    assert_error(err, "get", "ENOENT", bad, "No such file")
    err = cli.fails("get", f"{d}/f", str(tmp_path))
    assert_error(err, "get", "EISDIR", str(tmp_path))


@pytest.mark.parametrize("args,needles", [
    (["ls", "--bogus", "/"], ["--bogus"]),
    (["setstripe", "-c", "abc", "/x"], ["--count", "abc"]),
    (["setstripe", "-c", "-1", "/x"], ["--count", "-1"]),
    (["setstripe", "-c", "4294967296", "/x"], ["--count"]),
    (["ls", "--timeout", "0", "/"], ["--timeout", "0"]),
    (["ls", "--timeout", "x", "/"], ["--timeout"]),
    (["stat"], ["path", "required"]),
    (["put", "only-one"], ["required"]),
    (["cluster"], ["subcommand"]),
    ([], ["subcommand"]),
], ids=["unknown-flag", "count-abc", "count-negative", "count-too-big", "timeout-0",
        "timeout-x", "stat-no-path", "put-one-arg", "cluster-alone", "nothing"])
def test_bad_command_lines_exit_2(cli, args, needles):
    err = cli.fails(*args, rc=2)
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    if "setstripe" in args:   # the parse fails before any change
        assert not cli.exists("/x")


@pytest.mark.parametrize("size,needles", [
    ("3q", ["EINVAL", "3q", "unit"]),
    ("M", ["EINVAL", "'M'"]),
    ("99999999999999999999", ["EINVAL", "too large"]),
    ("100", ["EINVAL", "4096"]),
    ("1", ["EINVAL", "4096"]),
])
def test_setstripe_bad_size(cli, errdir, size, needles):
    # On a missing path (which setstripe would create) and on a directory
    # (whose default it would set): nothing changes.
    err = cli.fails("setstripe", "-S", size, f"{errdir}/f")
    assert_error(err, "setstripe", *needles)
    err = cli.fails("setstripe", "-S", size, errdir)
    assert_error(err, "setstripe", *needles)
    assert_unchanged(cli, errdir)
    assert cli.json("getstripe", errdir)["stripe_size"] == 0


def test_help_exits_0(cli):
    r = run("--help")
    assert r.returncode == 0 and b"put" in r.stdout and b"setstripe" in r.stdout
    r = run("setstripe", "--help")
    assert r.returncode == 0 and b"--count" in r.stdout and b"--size" in r.stdout


# ------------------------------------------------------ finding stria-meta --

@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound (so nothing else
    takes it) but never listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("args", [["ls", "/"], ["stat", "/x"], ["df"], ["cluster", "status"],
                                  ["put", "-", "/x"]],
                         ids=["ls", "stat", "df", "cluster-status", "put"])
def test_unreachable_meta_gives_up_at_its_timeout(closed_port, args):
    addr = f"127.0.0.1:{closed_port}"
    # The subprocess timeout only catches a hang; it is far above --timeout.
    r = run(*args, "--timeout", "1", meta=addr, input=b"", timeout=60)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert_error(r.stderr, " ".join(args[:2]) if args[0] == "cluster" else args[0],
                 addr, "ECONNREFUSED")
    # It retried for the --timeout it was given, no more.
    assert "after 1000 ms" in r.stderr, r.stderr


@pytest.mark.parametrize("meta,needles", [
    ("garbage", ["EINVAL", "garbage", "HOST:PORT"]),
    ("127.0.0.1:99999", ["EINVAL", "127.0.0.1:99999", "port"]),
])
def test_bad_meta_address(meta, needles):
    r = run("ls", "/", "--timeout", "1", meta=meta)
    assert r.returncode == 1
    assert_error(r.stderr, "ls", *needles)


def test_stria_meta_from_the_environment(cl, cli, d, closed_port):
    cli("put", "-", f"{d}/f", input=b"via env")
    # No --meta: STRIA_META names the cluster.
    r = run("cat", f"{d}/f", env={"STRIA_META": cl.meta})
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"via env"
    r = run("put", "-", f"{d}/g", env={"STRIA_META": cl.meta}, input=b"g")
    assert r.returncode == 0, r.stderr
    assert cli("cat", f"{d}/g") == b"g"
    # --meta wins over the environment.
    r = run("cat", f"{d}/f", meta=cl.meta, env={"STRIA_META": f"127.0.0.1:{closed_port}"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"via env"
    # The environment is what is used: a wrong one fails, naming it.
    r = run("cat", f"{d}/f", "--timeout", "1", env={"STRIA_META": f"127.0.0.1:{closed_port}"})
    assert r.returncode == 1
    assert_error(r.stderr, "cat", f"127.0.0.1:{closed_port}")
    # Neither: a message that says what to do.
    r = run("cat", f"{d}/f")
    assert r.returncode == 1
    assert_error(r.stderr, "cat", "--meta", "STRIA_META")


# ---------------------------------- bugs these tests found, now fixed --

def test_mkdir_p_on_an_existing_file_fails(cli, d):
    cli("put", "-", f"{d}/f", input=b"x")
    err = cli.fails("mkdir", "-p", f"{d}/f")
    assert_error(err, "mkdir", "EEXIST", f"{d}/f")


def test_get_of_a_directory_leaves_the_local_file_alone(cli, d, tmp_path):
    out = tmp_path / "precious"
    out.write_bytes(b"precious data")
    err = cli.fails("get", d, str(out))
    assert_error(err, "get", "EISDIR", d)
    assert out.read_bytes() == b"precious data"


def test_put_of_a_local_directory_leaves_the_remote_file_alone(cli, d, tmp_path):
    data = os.urandom(300000)
    cli("put", "-", f"{d}/f", input=data)
    err = cli.fails("put", str(tmp_path), f"{d}/f")
    assert_error(err, "put", "EISDIR", str(tmp_path))
    assert cli("cat", f"{d}/f") == data
