"""The mount's life: a crash (kill -9) and recovery, a clean SIGTERM,
mount.stria as mount(8)'s helper (directly, through `mount -t fuse.stria`
and through an fstab line), and the mounts that `stria local up --mount`
starts and `stria local down` removes, dead or alive.

These tests kill and unmount: they use their own mounts (and clusters where
the test is about `stria local`), never the shared `mount` fixture."""
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BIN, Mount, bin_path, expect_errno, is_mounted, wait_for

KiB, MiB = 1 << 10, 1 << 20


# ---------------------------------------------------------------- helpers --

def sh(*args, timeout=120, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)


def alive(pid):
    """True while pid exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def exited(pid):
    """True once every thread of pid has exited (a leader shows as a zombie
    while its other threads still run, and still hold /dev/fuse)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    return not alive(pid) and len(tasks) <= 1


def daemons_of(path):
    """Pids of stria-fuse processes serving path (a unique temp dir, so the
    match is exact: mount.stria daemonizes and tells us no pid)."""
    path = os.path.realpath(path)
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if os.path.basename(exe).startswith("stria-fuse") and path in args and alive(int(pid)):
            out.append(int(pid))
    return out


def mount_source(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                return fields[fields.index("-") + 2]
    return None


def release_mount(path):
    """Stops whatever serves path (by pid), then detaches a mount left over;
    for the finally clauses of tests whose daemons we cannot wait() for."""
    def signal_all(sig):
        for pid in daemons_of(path):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + 15
    while daemons_of(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    signal_all(signal.SIGKILL)
    if is_mounted(path):
        sh("umount", "-l", path)
    assert not is_mounted(path), f"{path} still mounted"


def write_file(path, data, fsync=True):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view[:4 * MiB])
            view = view[n:]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def same(path, want):
    got = read_file(path)
    if got == want:
        return
    n = min(len(got), len(want))
    first = next((i for i in range(0, n, 4096) if got[i:i + 4096] != want[i:i + 4096]), None)
    pytest.fail(f"{path}: {len(got)} bytes (expected {len(want)}), sha256 {hashlib.sha256(got).hexdigest()[:16]} "
                f"(expected {hashlib.sha256(want).hexdigest()[:16]}), first differing 4 KiB block at {first}")


def rel(mount, path):
    """The Stria path of a path in the mount."""
    return "/" + os.path.relpath(path, mount.path)


# ------------------------------------------------------- crash, recovery --

def test_kill9_keeps_fsynced_data_and_remounts(cluster):
    m = Mount(cluster)
    held = -1
    try:
        d = os.path.join(m.path, f"crash-{uuid.uuid4().hex[:8]}")
        os.mkdir(d)
        # The big file striped in 1 MiB units over all three stores.
        cluster.stria("setstripe", "-c", "3", "-S", "1M", rel(m, d))
        files = {
            "empty": b"",
            "one": b"x",
            "small": os.urandom(5000),
            "mib_plus": os.urandom(MiB + 1),
            "big": os.urandom(20 * MiB),
        }
        for name, data in files.items():
            write_file(os.path.join(d, name), data)
        # A hole of 3 MiB between two written ends.
        files["sparse"] = b"head" + bytes(3 * MiB) + b"tail"
        fd = os.open(os.path.join(d, "sparse"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"tail", 3 * MiB + 4)
            os.pwrite(fd, b"head", 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        layout = json.loads(cluster.stria("getstripe", "--json", rel(m, os.path.join(d, "big"))).stdout)
        assert layout["stripe_count"] == 3 and len(set(layout["targets"])) == 3, layout
        # One file is open at the kill, fsynced, with more written after its
        # fsync: the fsynced part must survive; the rest may or may not.
        synced = os.urandom(3 * MiB + 123)
        held = os.open(os.path.join(d, "open"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(held, synced)
        os.fsync(held)
        os.write(held, os.urandom(2 * MiB))

        m.kill(signal.SIGKILL)
        assert m.proc.returncode == -signal.SIGKILL
        # The dead mount stays in the table, and every call that needs the
        # daemon fails with ENOTCONN (never hangs). (A stat the kernel can
        # answer from its attribute cache still succeeds, as on any FUSE
        # file system: none is asked for here.)
        assert is_mounted(m.path) == "fuse.stria"
        expect_errno(errno.ENOTCONN, os.listdir, m.path)
        expect_errno(errno.ENOTCONN, os.listdir, d)
        expect_errno(errno.ENOTCONN, os.stat, os.path.join(d, "never-looked-up"))
        expect_errno(errno.ENOTCONN, os.open, os.path.join(d, "new"), os.O_CREAT | os.O_WRONLY, 0o644)
        expect_errno(errno.ENOTCONN, os.statvfs, m.path)
        try:
            os.close(held)     # its flush cannot reach the daemon: any result
        except OSError:
            pass
        held = -1

        r = sh("fusermount3", "-u", "-z", m.path)
        assert r.returncode == 0, f"fusermount3 -u -z: {r.stderr}"
        assert is_mounted(m.path) is None, "the dead mount is still in /proc/self/mountinfo"
        assert os.listdir(m.path) == [], "the mount point is not the bare (empty) directory again"

        m.start()      # a new daemon on the same mount point
        for name, data in files.items():
            same(os.path.join(d, name), data)
        got = read_file(os.path.join(d, "open"))
        assert len(got) >= len(synced), f"'open': {len(got)} bytes, fewer than the {len(synced)} fsynced"
        assert got[:len(synced)] == synced, "'open': the fsynced part differs"
        assert sorted(os.listdir(d)) == sorted([*files, "open"])
    finally:
        if held >= 0:
            try:
                os.close(held)
            except OSError:
                pass
        m.close()


def test_sigterm_unmounts_cleanly(cluster):
    m = Mount(cluster)
    try:
        p = os.path.join(m.path, f"term-{uuid.uuid4().hex[:8]}")
        data = os.urandom(300 * KiB)
        write_file(p, data, fsync=False)      # close alone makes it durable
        m.proc.terminate()
        assert m.proc.wait(timeout=30) == 0, f"stria-fuse exited {m.proc.returncode} on SIGTERM"
        assert is_mounted(m.path) is None, "still mounted after SIGTERM"
        m.start()
        same(p, data)
    finally:
        m.close()


def test_sigterm_with_a_file_open(cluster):
    m = Mount(cluster)
    fd = -1
    try:
        fd = os.open(os.path.join(m.path, f"busy-{uuid.uuid4().hex[:8]}"), os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"busy")
        m.proc.terminate()
        # A busy mount point does not keep the daemon from leaving.
        assert m.proc.wait(timeout=30) == 0, f"stria-fuse exited {m.proc.returncode} on SIGTERM"
        assert is_mounted(m.path) is None, "still mounted after SIGTERM"
    finally:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
        m.close()


# ----------------------------------------------------- mount(8) helper --

@pytest.fixture
def mp():
    """An empty mount point, released (daemon and mount) and removed after."""
    path = tempfile.mkdtemp(prefix="stria-mnt-helper-")
    yield path
    release_mount(path)
    os.rmdir(path)


def visible_file(cluster):
    """A file put into the cluster past any mount: (its name, its bytes)."""
    name = f"put-{uuid.uuid4().hex[:8]}"
    data = os.urandom(100 * KiB + 7)
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        cluster.stria("put", f.name, "/" + name)
    return name, data


def check_mounted(cluster, path):
    """path is a Stria mount of this cluster, serving files both ways."""
    assert is_mounted(path) == "fuse.stria", f"{path}: {is_mounted(path)}"
    assert mount_source(path) == f"stria@{cluster.meta}"
    name, data = visible_file(cluster)
    assert name in os.listdir(path)
    same(os.path.join(path, name), data)
    back = f"back-{uuid.uuid4().hex[:8]}"
    write_file(os.path.join(path, back), b"written through the mount")
    with tempfile.NamedTemporaryFile() as f:
        cluster.stria("get", "/" + back, f.name)
        assert read_file(f.name) == b"written through the mount"


def unmount_and_wait(path):
    pids = daemons_of(path)
    assert len(pids) == 1, f"daemons serving {path}: {pids}"
    r = sh("umount", path)
    assert r.returncode == 0, f"umount {path}: {r.stderr}"
    assert is_mounted(path) is None
    # The daemon sees its session end and leaves.
    wait_for(lambda: not alive(pids[0]), timeout=30, what=f"stria-fuse {pids[0]} to exit after umount")


def test_mount_stria_helper(cluster, mp):
    log = os.path.join(cluster.dir, f"helper-{uuid.uuid4().hex[:8]}.log")
    r = sh(bin_path("mount.stria"), cluster.meta, mp, "-o", f"log={log}")
    assert r.returncode == 0, f"mount.stria: rc {r.returncode}: {r.stderr}"
    # It returned once mounted, leaving the daemon in the background.
    check_mounted(cluster, mp)
    unmount_and_wait(mp)
    # The daemon logged where -o log= said (flushed as it exits).
    text = read_file(log).decode()
    assert f"mounted stria@{cluster.meta} at {os.path.realpath(mp)}" in text, text[-2000:]


def test_mount_stria_bad_meta_address(cluster, mp):
    # timeout=2: the address refuses at once; only how long it retries varies.
    r = sh(bin_path("mount.stria"), "127.0.0.1:1", mp, "-o", "timeout=2")
    assert r.returncode != 0
    assert "127.0.0.1:1" in r.stderr, f"the message does not name the address: {r.stderr!r}"
    assert is_mounted(mp) is None
    assert daemons_of(mp) == []


def test_mount_stria_missing_mount_point(cluster):
    missing = os.path.join(tempfile.gettempdir(), f"stria-no-such-{uuid.uuid4().hex[:8]}", "mnt")
    r = sh(bin_path("mount.stria"), cluster.meta, missing)
    assert r.returncode == 2, f"rc {r.returncode}: {r.stderr}"
    assert missing in r.stderr and "No such file or directory" in r.stderr, r.stderr
    assert daemons_of(missing) == []


@pytest.fixture
def fuse_stria_helper():
    """/sbin/mount.fuse.stria -> build/bin/mount.stria for this test only
    (util-linux's mount runs /sbin/mount.TYPE for -t TYPE)."""
    link = "/sbin/mount.fuse.stria"
    target = os.path.join(BIN, "mount.stria")
    bin_path("mount.stria")
    try:
        os.symlink(target, link)      # fails if anything is there: not ours to replace
    except FileExistsError:
        pytest.skip(f"{link} exists already (-> {os.path.realpath(link)})")
    try:
        yield link
    finally:
        if os.path.islink(link) and os.readlink(link) == target:
            os.unlink(link)


def test_mount_t_fuse_stria(cluster, mp, fuse_stria_helper):
    log = os.path.join(cluster.dir, f"mount-t-{uuid.uuid4().hex[:8]}.log")
    r = sh("mount", "-t", "fuse.stria", cluster.meta, mp, "-o", f"log={log}")
    assert r.returncode == 0, f"mount -t fuse.stria: rc {r.returncode}: {r.stderr}"
    check_mounted(cluster, mp)
    unmount_and_wait(mp)


def test_mount_from_fstab_line(cluster, mp, fuse_stria_helper):
    log = os.path.join(cluster.dir, f"fstab-{uuid.uuid4().hex[:8]}.log")
    with tempfile.NamedTemporaryFile("w", prefix="stria-fstab-", suffix=".fstab") as fstab:
        fstab.write(f"{cluster.meta} {mp} fuse.stria defaults,_netdev,allow_other,log={log} 0 0\n")
        fstab.flush()
        r = sh("mount", "-T", fstab.name, mp)
        assert r.returncode == 0, f"mount -T {fstab.name} {mp}: rc {r.returncode}: {r.stderr}"
        check_mounted(cluster, mp)
        with open("/proc/self/mountinfo") as f:
            line = next(line for line in f if line.split()[4] == os.path.realpath(mp))
        assert "allow_other" in line.split(" - ")[1], line
        unmount_and_wait(mp)
    # The line's own option (log=) reached the daemon, past mount(8).
    text = read_file(log).decode()
    assert f"mounted stria@{cluster.meta} at {os.path.realpath(mp)}" in text, text[-2000:]


# ---------------------------------------------------------- stria local --

class LocalCluster:
    """A cluster of `stria local up --dir D --mount MP`, of this test alone."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="stria-local-test-")
        self.mp = tempfile.mkdtemp(prefix="stria-local-mnt-")
        self.pids = []         # of the last up
        self.started = []      # of every up

    def up(self):
        r = sh(bin_path("stria"), "local", "up", "--dir", self.dir, "--mount", self.mp)
        assert r.returncode == 0, f"local up --mount: rc {r.returncode}: {r.stderr}"
        self.meta = r.stdout.strip().splitlines()[-1].split("=", 1)[1]
        self.pids = [p["pid"] for p in self.status()]
        self.started += self.pids
        return r

    def status(self):
        r = sh(bin_path("stria"), "local", "status", "--dir", self.dir, "--json")
        assert r.returncode in (0, 3), f"local status: rc {r.returncode}: {r.stderr}"
        return json.loads(r.stdout)

    def down(self):
        return sh(bin_path("stria"), "local", "down", "--dir", self.dir)

    def ours(self, pid):
        """pid is alive and still one of our daemons (not a reused pid)."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace")
        except OSError:
            return False
        return alive(pid) and (self.dir in args or self.mp in args)

    def close(self):
        self.down()
        # Whatever local down left: ours, by pid.
        for pid in self.started:
            if self.ours(pid):
                os.kill(pid, signal.SIGKILL)
        release_mount(self.mp)
        os.rmdir(self.mp)
        if not os.environ.get("STRIA_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def local():
    c = LocalCluster()
    yield c
    c.close()


def fuse_entry(status):
    entries = [p for p in status if p["name"] == "fuse"]
    assert len(entries) == 1, status
    return entries[0]


def test_local_up_mount_and_down(local):
    local.up()
    assert is_mounted(local.mp) == "fuse.stria"
    p = os.path.join(local.mp, "hello")
    write_file(p, b"hello, local")
    same(p, b"hello, local")

    r = sh(bin_path("stria"), "local", "status", "--dir", local.dir)
    assert r.returncode == 0, f"local status: rc {r.returncode}: {r.stdout}{r.stderr}"
    lines = [line.split() for line in r.stdout.splitlines()]
    fuse_lines = [line for line in lines if line and line[0] == "fuse"]
    assert fuse_lines and fuse_lines[0][1] == "running", r.stdout
    fuse = fuse_entry(local.status())
    assert fuse["running"] and fuse["listen"] == os.path.realpath(local.mp), fuse
    assert daemons_of(local.mp) == [fuse["pid"]]

    r = local.down()
    assert r.returncode == 0, f"local down: rc {r.returncode}: {r.stderr}"
    assert is_mounted(local.mp) is None
    for pid in local.pids:
        assert not alive(pid), f"pid {pid} still running after local down"
    assert not any(p["running"] for p in local.status())

    # The data stays: up again (and mounted again), it is there.
    local.up()
    same(p, b"hello, local")


def test_local_down_removes_a_dead_mount(local):
    local.up()
    pid = fuse_entry(local.status())["pid"]
    os.kill(pid, signal.SIGKILL)
    # Until it is all gone, a call may still be queued and then aborted
    # (ECONNABORTED) rather than refused (ENOTCONN).
    wait_for(lambda: exited(pid), timeout=30, what=f"stria-fuse {pid} to die")
    assert is_mounted(local.mp) == "fuse.stria"
    expect_errno(errno.ENOTCONN, os.listdir, local.mp)
    assert not fuse_entry(local.status())["running"]

    r = local.down()
    assert r.returncode == 0, f"local down: rc {r.returncode}: {r.stderr}"
    assert is_mounted(local.mp) is None, "local down left the dead mount"
    assert os.listdir(local.mp) == []
    for p in local.pids:
        assert not alive(p), f"pid {p} still running after local down"
