"""Fixtures for the mount's system tests: a real local cluster (stria-meta and
three stria-store processes on loopback) and real stria-fuse mounts of it,
started here and stopped by pid at the end.

STRIA_BIN_DIR names the build's bin/ (ctest sets it); the default is
<repo>/build/bin. Run as root: the tests mount, and switch to other users
with setuid in child processes.
"""
import errno
import os
import pickle
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("STRIA_BIN_DIR", os.path.join(REPO, "build", "bin"))

# Users the permission tests act as (they need not exist in /etc/passwd).
ALICE, BOB, CAROL = 2001, 2002, 2003
STAFF, OTHERS = 3001, 3002


def bin_path(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build first (STRIA_BIN_DIR={BIN})")
    return path


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                return fields[fields.index("-") + 1]
    return None


def wait_for(cond, timeout=10.0, what="condition"):
    """Polls cond() until it is true; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Cluster:
    def __init__(self, stores=3, args=()):
        if os.geteuid() != 0:
            pytest.skip("the mount tests run as root (they mount and setuid)")
        self.dir = tempfile.mkdtemp(prefix="stria-fuse-test-")
        out = subprocess.run(
            [bin_path("stria"), "local", "up", "--dir", self.dir, "--stores", str(stores), *args],
            capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            pytest.fail(f"local up failed: {out.stderr}")
        self.meta = out.stdout.strip().splitlines()[-1].split("=", 1)[1]

    def stria(self, *args, check=True):
        r = subprocess.run([bin_path("stria"), *args, "--meta", self.meta],
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            pytest.fail(f"stria {' '.join(args)}: {r.stderr}")
        return r

    def down(self):
        subprocess.run([bin_path("stria"), "local", "down", "--dir", self.dir],
                       capture_output=True, timeout=120)
        if not os.environ.get("STRIA_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)


class Mount:
    """One stria-fuse process (foreground, so its pid is ours) and its mount."""

    def __init__(self, cluster, options="", path=None):
        self.cluster = cluster
        self.options = options
        self.path = path or tempfile.mkdtemp(prefix="stria-mnt-")
        self.log = os.path.join(cluster.dir, f"fuse-{uuid.uuid4().hex[:8]}.log")
        self.proc = None
        self.start()

    def start(self):
        o = f"log={self.log},log_level=info"
        if self.options:
            o += "," + self.options
        # STRIA_FUSE_WRAPPER runs the daemon under a tool ("valgrind -q").
        wrapper = os.environ.get("STRIA_FUSE_WRAPPER", "").split()
        self.proc = subprocess.Popen(
            wrapper + [bin_path("stria-fuse"), "--meta", self.cluster.meta, self.path, "-f", "-o", o],
            stdout=subprocess.DEVNULL, stderr=open(self.log + ".err", "ab"))
        deadline = time.monotonic() + 30
        while is_mounted(self.path) != "fuse.stria":
            if self.proc.poll() is not None:
                pytest.fail(f"stria-fuse exited ({self.proc.returncode}): "
                            f"{open(self.log + '.err').read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.path} not mounted within 30 s")
            time.sleep(0.02)

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()   # the daemon unmounts cleanly on SIGTERM
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if is_mounted(self.path):
            subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True)
        assert not is_mounted(self.path), f"{self.path} still mounted"

    def close(self):
        self.stop()
        try:
            os.rmdir(self.path)
        except OSError:
            pass


@pytest.fixture(scope="session")
def cluster():
    c = Cluster()
    yield c
    c.down()


# The modes every mount test runs in: with the kernel's caches and its own
# permission checks in front of Stria's, with both off (so that Stria's
# checks alone decide; its default), and with the kernel's writeback cache
# (write(2) lands in the page cache; whole pages reach Stria later; it
# brings default_permissions).
MODES = {
    "cached": "default_permissions",
    "uncached": "cache=off",
    "writeback": "writeback_cache",
}


@pytest.fixture(scope="session", params=sorted(MODES))
def mount(request, cluster):
    m = Mount(cluster, MODES[request.param])
    m.mode = request.param
    yield m
    m.close()


@pytest.fixture
def tdir(mount):
    """A fresh directory (mode 0777) for one test, in the mount."""
    d = os.path.join(mount.path, f"t-{uuid.uuid4().hex[:12]}")
    os.mkdir(d)
    os.chmod(d, 0o777)
    yield d
    subprocess.run(["rm", "-rf", d], capture_output=True)


def as_user(uid, gid=None, groups=(), fn=None):
    """Runs fn() in a child process with these credentials; returns its
    result, or raises the OSError it raised (same errno)."""
    gid = uid if gid is None else gid
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            try:
                os.setgroups(list(groups))
                os.setgid(gid)
                os.setuid(uid)
                out = ("ok", fn())
            except OSError as e:
                out = ("oserror", e.errno, str(e))
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = ("error", repr(e))
            os.write(w, pickle.dumps(out))
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    out = pickle.loads(data)
    if out[0] == "ok":
        return out[1]
    if out[0] == "oserror":
        raise OSError(out[1], out[2])
    raise AssertionError(f"child failed: {out[1]}")


def expect_errno(code, call, /, *args, **kwargs):
    """Asserts that call(*args, **kwargs) fails with errno code."""
    with pytest.raises(OSError) as e:
        call(*args, **kwargs)
    assert e.value.errno == code, f"expected {errno.errorcode[code]}, got {e.value!r}"
