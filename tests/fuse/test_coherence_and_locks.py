"""Two stria-fuse mounts of one cluster, standing in for two nodes: what one
sees of the other's changes (close-to-open), and the flock and POSIX locks
that must hold between them (they live in stria-meta)."""
import errno
import fcntl
import os
import pickle
import select
import signal
import struct
import subprocess
import time
import uuid

import pytest

from conftest import Mount, expect_errno, wait_for

# The mounts use default options: attributes, names and misses are cached by
# the kernel for 1 s. Polls get that plus room for a loaded machine.
ATTR_TIMEOUT = 1.0
WITHIN = ATTR_TIMEOUT + 9.0
# A call that must not wait (F_SETLK, LOCK_NB) and has not answered by now
# is waiting for something.
AT_ONCE = 5.0
# How long a blocking lock request is watched to see that it does wait.
STILL_WAITING = 0.5

# struct flock on Linux x86_64: l_type, l_whence (short), l_start, l_len
# (off_t), l_pid (pid_t), then 4 bytes of padding (32 bytes in all).
FLOCK = "hhqqi4x"
LOCKED = (errno.EAGAIN, errno.EACCES)   # what F_SETLK may say on a conflict


# ----------------------------------------------------------------- helpers --

def write_file(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def read_fd(fd):
    """The whole content through fd, from offset 0, until EOF."""
    out, off = [], 0
    while True:
        b = os.pread(fd, 1 << 16, off)
        if not b:
            return b"".join(out)
        out.append(b)
        off += len(b)


def read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_fd(fd)
    finally:
        os.close(fd)


def gone(path):
    """True when open(path) fails with ENOENT."""
    try:
        os.close(os.open(path, os.O_RDONLY))
        return False
    except FileNotFoundError:
        return True


def content_is(path, data):
    try:
        return read_file(path) == data
    except FileNotFoundError:
        return False


def setlk(fd, cmd, typ, start, length):
    fcntl.fcntl(fd, cmd, struct.pack(FLOCK, typ, os.SEEK_SET, start, length, 0))


def granted(take, *args):
    """Whether a non-blocking lock call was granted (False: it conflicts)."""
    try:
        take(*args)
        return True
    except OSError as e:
        if e.errno in LOCKED:
            return False
        raise


def getlk(fd, typ, start, length):
    """F_GETLK: (l_type, l_start, l_len, l_pid) of a conflicting lock."""
    out = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FLOCK, typ, os.SEEK_SET, start, length, 0))
    t, _, s, n, pid = struct.unpack(FLOCK, out)
    return t, s, n, pid


class Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):
    raise Interrupted()


def setlkw_interruptible(fd, typ, start, length):
    """F_SETLKW that a SIGUSR1 ends: 'interrupted' then, else 'granted'."""
    signal.signal(signal.SIGUSR1, _raise_interrupted)
    try:
        setlk(fd, fcntl.F_SETLKW, typ, start, length)
        return "granted"
    except Interrupted:
        return "interrupted"


# --------------------------------------------------- a process of the test --

def _send(fd, obj):
    data = pickle.dumps(obj)
    data = struct.pack("I", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def _recv(fd):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf
    head = exactly(4)
    if head is None:
        return None
    return pickle.loads(exactly(struct.unpack("I", head)[0]))


# What a worker can be asked to do (its fds are its own).
WORKER_OPS = {
    "open": lambda path, flags: os.open(path, flags, 0o644),
    "close": os.close,
    "flock": fcntl.flock,
    "setlk": setlk,
    "getlk": getlk,
    "setlkw_interruptible": setlkw_interruptible,
}

# Killed workers that were still inside a FUSE request (the kernel lets
# them go when the daemon answers): reaped before the mounts close.
UNREAPED = []


class Worker:
    """A forked child that runs requests for the test. It is a process of
    its own (its own POSIX lock owner), can block in a lock call while the
    test goes on, and can be killed."""

    def __init__(self):
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                # Descriptors inherited from the test would keep its open
                # files (and their flocks) alive after the test closes them.
                for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
                    if fd > 2 and fd not in (req_r, rep_w):
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                while True:
                    msg = _recv(req_r)
                    if msg is None:
                        break
                    op, args = msg
                    try:
                        out = ("ok", WORKER_OPS[op](*args))
                    except OSError as e:
                        out = ("oserror", e.errno, str(e))
                    except BaseException as e:  # noqa: BLE001 - reported to the test
                        out = ("error", repr(e))
                    _send(rep_w, out)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(rep_w)
        self.pid, self.req, self.rep = pid, req_w, rep_r
        self.alive = True

    def start(self, op, *args):
        _send(self.req, (op, args))

    def done(self, timeout=0.0):
        """True when the request started last has answered."""
        return bool(select.select([self.rep], [], [], timeout)[0])

    def result(self, timeout=WITHIN, what="an answer"):
        if not self.done(timeout):
            pytest.fail(f"worker {self.pid}: no {what} within {timeout}s")
        out = _recv(self.rep)
        if out is None:
            pytest.fail(f"worker {self.pid} died")
        if out[0] == "ok":
            return out[1]
        if out[0] == "oserror":
            raise OSError(out[1], out[2])
        raise AssertionError(f"worker failed: {out[1]}")

    def __call__(self, op, *args):
        self.start(op, *args)
        return self.result()

    def at_once(self, op, *args):
        """Runs a call that must not wait; fails the test if it does."""
        self.start(op, *args)
        return self.result(AT_ONCE, f"answer to a non-blocking {op}{args}")

    def kill(self):
        if not self.alive:
            return
        self.alive = False
        os.kill(self.pid, signal.SIGKILL)
        os.close(self.req)
        os.close(self.rep)
        deadline = time.monotonic() + 1.0
        while os.waitpid(self.pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                UNREAPED.append(self.pid)
                return
            time.sleep(0.02)


@pytest.fixture
def workers():
    """Makes Workers; kills whatever is left of them after the test."""
    made = []

    def make():
        w = Worker()
        made.append(w)
        return w
    yield make
    for w in made:
        w.kill()


def expect_locked(worker, op, *args):
    """A non-blocking lock call in worker fails at once as locked."""
    with pytest.raises(OSError) as e:
        worker.at_once(op, *args)
    assert e.value.errno in LOCKED, f"{op}{args}: {e.value!r}"


def assert_waits(worker, what):
    assert not worker.done(STILL_WAITING), f"{what} returned while the other node holds the lock"


# ---------------------------------------------------------------- fixtures --

def reap(deadline):
    while UNREAPED:
        if os.waitpid(UNREAPED[0], os.WNOHANG)[0] != 0:
            UNREAPED.pop(0)
        elif time.monotonic() > deadline:
            return
        else:
            time.sleep(0.05)


NODE_OPTIONS = {"default": "", "uncached": "cache=off", "writeback": "writeback_cache"}


@pytest.fixture(scope="module", params=sorted(NODE_OPTIONS))
def nodes(request, cluster):
    """Two mounts of the cluster, nodes A and B: with default options (the
    kernel caches names, attributes and pages), with cache=off, and with
    the kernel's writeback cache."""
    options = NODE_OPTIONS[request.param]
    a = Mount(cluster, options)
    a.mode = request.param
    try:
        b = Mount(cluster, options)
    except BaseException:
        a.close()
        raise
    try:
        yield a, b
    finally:
        reap(time.monotonic() + 60)   # a daemon answers within its 30 s timeout
        try:
            b.close()
        finally:
            a.close()
        for pid in UNREAPED:   # let go by the unmount
            os.waitpid(pid, 0)
        UNREAPED.clear()


class Dirs:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def on_a(self, name):
        return os.path.join(self.a, name)

    def on_b(self, name):
        return os.path.join(self.b, name)


@pytest.fixture
def d(nodes):
    """A fresh directory for one test, made on A; .a and .b are its paths
    through the two mounts."""
    a, b = nodes
    name = f"co-{uuid.uuid4().hex[:12]}"
    os.mkdir(os.path.join(a.path, name))
    # B never looked this name up, so nothing it cached can hide it.
    wait_for(lambda: os.path.isdir(os.path.join(b.path, name)), WITHIN, "the test directory on B")
    yield Dirs(os.path.join(a.path, name), os.path.join(b.path, name))
    subprocess.run(["rm", "-rf", os.path.join(a.path, name)], capture_output=True)


# --------------------------------------------------------------- coherence --

def test_create_on_a_is_seen_whole_on_b(d):
    data = os.urandom(2_500_000)   # more than one 1 MiB FUSE write
    # B looks first, so the kernel remembers the miss (negative_timeout).
    expect_errno(errno.ENOENT, os.stat, d.on_b("f"))
    write_file(d.on_a("f"), data)
    wait_for(lambda: os.path.exists(d.on_b("f")), WITHIN, "the new file on B")
    assert os.stat(d.on_b("f")).st_size == len(data)
    assert read_file(d.on_b("f")) == data
    assert "f" in os.listdir(d.b)


@pytest.mark.parametrize("new_size", [7_000, 20_000, 150_000], ids=["shorter", "same", "longer"])
def test_rewrite_on_a_is_read_fresh_on_b_after_close(d, new_size):
    old = os.urandom(20_000)
    new = os.urandom(new_size)
    write_file(d.on_a("f"), old)
    wait_for(lambda: content_is(d.on_b("f"), old), WITHIN, "the first version on B")
    # B reads the old version again just before: its pages and size are cached.
    assert read_file(d.on_b("f")) == old
    assert os.stat(d.on_b("f")).st_size == len(old)
    write_file(d.on_a("f"), new)   # O_TRUNC, write, close
    # Close-to-open: B's next open sees all of it, without waiting.
    fd = os.open(d.on_b("f"), os.O_RDONLY)
    try:
        got = read_fd(fd)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    assert len(got) == len(new)
    assert got == new
    assert size == len(new)


def test_unlink_on_a_gives_enoent_on_b(d):
    write_file(d.on_a("f"), b"doomed\n")
    wait_for(lambda: content_is(d.on_b("f"), b"doomed\n"), WITHIN, "the file on B")
    os.unlink(d.on_a("f"))
    # B may use its cached name until entry_timeout; then the miss shows.
    wait_for(lambda: gone(d.on_b("f")), WITHIN, "ENOENT on B")
    expect_errno(errno.ENOENT, os.stat, d.on_b("f"))
    assert "f" not in os.listdir(d.b)


def test_file_open_on_b_stays_readable_after_unlink_on_a(d):
    data = os.urandom(2_300_000)
    write_file(d.on_a("f"), data)
    wait_for(lambda: os.path.exists(d.on_b("f")), WITHIN, "the file on B")
    fd = os.open(d.on_b("f"), os.O_RDONLY)
    try:
        os.unlink(d.on_a("f"))
        wait_for(lambda: gone(d.on_b("f")), WITHIN, "ENOENT on B")
        # Nothing was read through fd before: this goes to the stores.
        assert read_fd(fd) == data
        assert os.fstat(fd).st_size == len(data)
        # And again, a piece from the end, well after the unlink.
        assert os.pread(fd, 1000, len(data) - 1000) == data[-1000:]
    finally:
        os.close(fd)
    expect_errno(errno.ENOENT, os.stat, d.on_a("f"))


def test_append_on_a_is_seen_on_b(d):
    first, second = os.urandom(5_000), os.urandom(3_000)
    write_file(d.on_a("f"), first)
    wait_for(lambda: content_is(d.on_b("f"), first), WITHIN, "the file on B")
    assert os.stat(d.on_b("f")).st_size == len(first)   # B caches this size
    write_file(d.on_a("f"), second, os.O_WRONLY | os.O_APPEND)
    assert read_file(d.on_b("f")) == first + second   # open after A's close
    wait_for(lambda: os.stat(d.on_b("f")).st_size == len(first) + len(second), WITHIN,
             "the new size in B's stat")


def test_appends_alternating_between_nodes_keep_every_byte(d):
    # Each append opens after the other node closed: it must go at the end
    # the other node made, not at a size this node cached earlier.
    a1, b1, a2, b2 = b"A1-" * 100, b"B1-" * 200, b"A2-" * 50, b"B2-" * 10
    write_file(d.on_a("f"), a1)
    wait_for(lambda: os.path.exists(d.on_b("f")), WITHIN, "the file on B")
    write_file(d.on_b("f"), b1, os.O_WRONLY | os.O_APPEND)
    write_file(d.on_a("f"), a2, os.O_WRONLY | os.O_APPEND)
    write_file(d.on_b("f"), b2, os.O_WRONLY | os.O_APPEND)
    want = a1 + b1 + a2 + b2
    assert read_file(d.on_b("f")) == want
    assert read_file(d.on_a("f")) == want


def test_writes_after_a_truncate_to_zero_elsewhere_fail_loudly(d):
    # B truncates to 0 while A holds the file open for writing: the file
    # gets fresh objects, and A's later writes went to the old ones. They
    # are not in the file, and A's fsync and close say so (ESTALE), never
    # success over lost data.
    write_file(d.on_a("f"), b"x" * 10000)
    fd = os.open(d.on_a("f"), os.O_WRONLY)
    try:
        os.pwrite(fd, b"before", 0)
        os.fsync(fd)
        wait_for(lambda: content_is(d.on_b("f"), b"before" + b"x" * 9994), WITHIN, "A's first write on B")
        write_file(d.on_b("f"), b"new")   # O_TRUNC on B
        os.pwrite(fd, b"after", 0)
        expect_errno(errno.ESTALE, os.fsync, fd)
    finally:
        try:
            os.close(fd)
        except OSError as e:
            assert e.errno == errno.ESTALE
    wait_for(lambda: content_is(d.on_a("f"), b"new"), WITHIN, "B's content on A")


def test_rename_on_a_is_seen_on_b(d):
    write_file(d.on_a("old"), b"moved\n")
    wait_for(lambda: content_is(d.on_b("old"), b"moved\n"), WITHIN, "the file on B")
    os.rename(d.on_a("old"), d.on_a("new"))
    wait_for(lambda: gone(d.on_b("old")), WITHIN, "ENOENT for the old name on B")
    wait_for(lambda: content_is(d.on_b("new"), b"moved\n"), WITHIN, "the new name on B")
    assert sorted(os.listdir(d.b)) == ["new"]


def test_rename_over_a_name_b_read_replaces_it_on_b(d):
    # Save-by-rename: write a temporary file, rename it over the target.
    write_file(d.on_a("cfg"), b"version 1\n")
    wait_for(lambda: content_is(d.on_b("cfg"), b"version 1\n"), WITHIN, "version 1 on B")
    write_file(d.on_a("cfg.tmp"), b"version 2, longer\n")
    os.rename(d.on_a("cfg.tmp"), d.on_a("cfg"))
    wait_for(lambda: content_is(d.on_b("cfg"), b"version 2, longer\n"), WITHIN, "version 2 on B")
    wait_for(lambda: gone(d.on_b("cfg.tmp")), WITHIN, "ENOENT for the temporary name on B")


# ------------------------------------------------------------------- locks --

def open_rw(path):
    return os.open(path, os.O_RDWR)


@pytest.fixture
def lk(d):
    """A file of 1000 bytes made on A and seen on B: (path on A, path on B)."""
    write_file(d.on_a("lk"), b"x" * 1000)
    wait_for(lambda: os.path.exists(d.on_b("lk")), WITHIN, "the lock file on B")
    return d.on_a("lk"), d.on_b("lk")


def test_flock_nonblocking_conflicts_between_nodes(lk, workers):
    wa, wb = workers(), workers()
    fa = wa("open", lk[0], os.O_RDWR)
    fb = wb("open", lk[1], os.O_RDWR)
    wa("flock", fa, fcntl.LOCK_EX)
    expect_locked(wb, "flock", fb, fcntl.LOCK_EX | fcntl.LOCK_NB)
    expect_locked(wb, "flock", fb, fcntl.LOCK_SH | fcntl.LOCK_NB)
    wa("flock", fa, fcntl.LOCK_UN)
    wb.at_once("flock", fb, fcntl.LOCK_EX | fcntl.LOCK_NB)   # A's unlock has returned
    expect_locked(wa, "flock", fa, fcntl.LOCK_SH | fcntl.LOCK_NB)
    wb("flock", fb, fcntl.LOCK_UN)

    # Shared on both; neither can then make its lock exclusive.
    wa("flock", fa, fcntl.LOCK_SH)
    wb.at_once("flock", fb, fcntl.LOCK_SH | fcntl.LOCK_NB)
    expect_locked(wb, "flock", fb, fcntl.LOCK_EX | fcntl.LOCK_NB)
    expect_locked(wa, "flock", fa, fcntl.LOCK_EX | fcntl.LOCK_NB)
    wb("flock", fb, fcntl.LOCK_UN)

    # Closing A's descriptor drops its flock (the release is asynchronous).
    wa("flock", fa, fcntl.LOCK_EX)
    expect_locked(wb, "flock", fb, fcntl.LOCK_EX | fcntl.LOCK_NB)
    wa("close", fa)

    wait_for(lambda: granted(wb.at_once, "flock", fb, fcntl.LOCK_EX | fcntl.LOCK_NB), WITHIN,
             "B's flock after A's close")


def test_flock_shared_on_both_nodes_holds_off_exclusive(lk, workers):
    # flock owners are open file descriptions: this process holds both.
    fa, fb = open_rw(lk[0]), open_rw(lk[1])
    wc = workers()
    try:
        fcntl.flock(fa, fcntl.LOCK_SH)
        fcntl.flock(fb, fcntl.LOCK_SH | fcntl.LOCK_NB)   # no conflict: at once
        fc = wc("open", lk[0], os.O_RDWR)
        wc.start("flock", fc, fcntl.LOCK_EX)
        assert_waits(wc, "flock(LOCK_EX) on A")
        fcntl.flock(fa, fcntl.LOCK_UN)
        assert_waits(wc, "flock(LOCK_EX) on A")   # B still shares
        fcntl.flock(fb, fcntl.LOCK_UN)
        wc.result()
    finally:
        os.close(fa)
        os.close(fb)


def test_blocking_flock_on_b_waits_for_a_unlock_and_close(lk, workers):
    fa = open_rw(lk[0])
    wb = workers()
    try:
        fb = wb("open", lk[1], os.O_RDWR)
        fcntl.flock(fa, fcntl.LOCK_EX)
        wb.start("flock", fb, fcntl.LOCK_EX)
        assert_waits(wb, "flock(LOCK_EX) on B")
        fcntl.flock(fa, fcntl.LOCK_UN)
        wb.result()   # granted
        wb("flock", fb, fcntl.LOCK_UN)

        fcntl.flock(fa, fcntl.LOCK_EX)   # free again: at once
        wb.start("flock", fb, fcntl.LOCK_SH)
        assert_waits(wb, "flock(LOCK_SH) on B")
    finally:
        os.close(fa)   # the last close drops A's flock
    wb.result()


def test_posix_getlk_and_compatible_locks_between_nodes(lk, workers):
    wa = workers()   # a process on A; this one works on B
    fa = wa("open", lk[0], os.O_RDWR)
    fb = open_rw(lk[1])
    try:
        wa("setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 100)
        assert getlk(fb, fcntl.F_WRLCK, 50, 10) == (fcntl.F_WRLCK, 0, 100, wa.pid)
        assert getlk(fb, fcntl.F_RDLCK, 99, 1) == (fcntl.F_WRLCK, 0, 100, wa.pid)
        assert getlk(fb, fcntl.F_WRLCK, 0, 0)[:3] == (fcntl.F_WRLCK, 0, 100)   # l_len 0: to EOF
        assert getlk(fb, fcntl.F_WRLCK, 100, 100)[0] == fcntl.F_UNLCK
        setlk(fb, fcntl.F_SETLK, fcntl.F_WRLCK, 100, 100)   # [100, 200) only touches A's

        # From A: B's lock with this process's pid; A's own lock is no conflict.
        assert wa("getlk", fa, fcntl.F_WRLCK, 150, 1) == (fcntl.F_WRLCK, 100, 100, os.getpid())
        assert wa("getlk", fa, fcntl.F_WRLCK, 0, 100)[0] == fcntl.F_UNLCK

        # Read locks overlap.
        wa("setlk", fa, fcntl.F_SETLK, fcntl.F_RDLCK, 300, 100)
        setlk(fb, fcntl.F_SETLK, fcntl.F_RDLCK, 350, 100)
        assert getlk(fb, fcntl.F_RDLCK, 300, 100)[0] == fcntl.F_UNLCK
        assert getlk(fb, fcntl.F_WRLCK, 300, 10) == (fcntl.F_RDLCK, 300, 100, wa.pid)
        assert wa("getlk", fa, fcntl.F_WRLCK, 440, 5) == (fcntl.F_RDLCK, 350, 100, os.getpid())

        # B unlocks part of its write lock: the rest stays, A may take the part.
        setlk(fb, fcntl.F_SETLK, fcntl.F_UNLCK, 100, 50)
        assert wa("getlk", fa, fcntl.F_WRLCK, 100, 100) == (fcntl.F_WRLCK, 150, 50, os.getpid())
        wa("setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 100, 50)
        assert getlk(fb, fcntl.F_RDLCK, 120, 1) == (fcntl.F_WRLCK, 0, 150, wa.pid)   # merged
    finally:
        os.close(fb)


def test_posix_setlk_conflicts_between_nodes(lk, workers):
    wa, wb = workers(), workers()
    fa = wa("open", lk[0], os.O_RDWR)
    fb = wb("open", lk[1], os.O_RDWR)
    wa("setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 100)
    expect_locked(wb, "setlk", fb, fcntl.F_SETLK, fcntl.F_WRLCK, 50, 10)
    expect_locked(wb, "setlk", fb, fcntl.F_SETLK, fcntl.F_RDLCK, 50, 10)
    expect_locked(wb, "setlk", fb, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 0)
    wb.at_once("setlk", fb, fcntl.F_SETLK, fcntl.F_WRLCK, 100, 100)
    expect_locked(wa, "setlk", fa, fcntl.F_SETLK, fcntl.F_RDLCK, 199, 1)
    # A read lock keeps writers off, not readers.
    wa("setlk", fa, fcntl.F_SETLK, fcntl.F_RDLCK, 300, 100)
    wb.at_once("setlk", fb, fcntl.F_SETLK, fcntl.F_RDLCK, 350, 100)
    expect_locked(wb, "setlk", fb, fcntl.F_SETLK, fcntl.F_WRLCK, 360, 1)
    expect_locked(wa, "setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 440, 5)


def test_posix_locks_go_when_a_closes_any_descriptor(lk, workers):
    wa = workers()
    fa = wa("open", lk[0], os.O_RDWR)
    other = wa("open", lk[0], os.O_RDONLY)
    fb = open_rw(lk[1])
    try:
        wa("setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 100)
        wa("setlk", fa, fcntl.F_SETLK, fcntl.F_RDLCK, 500, 0)
        assert getlk(fb, fcntl.F_WRLCK, 10, 1)[0] == fcntl.F_WRLCK
        assert getlk(fb, fcntl.F_WRLCK, 600, 1)[:3] == (fcntl.F_RDLCK, 500, 0)
        # Closing a descriptor that never locked drops all of the process's
        # locks on the file; close(2) has returned, so they are gone now.
        wa("close", other)
        assert getlk(fb, fcntl.F_WRLCK, 0, 0)[0] == fcntl.F_UNLCK
        setlk(fb, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 0)
        # A's remaining descriptor still works, and sees B's lock.
        assert wa("getlk", fa, fcntl.F_RDLCK, 0, 1) == (fcntl.F_WRLCK, 0, 0, os.getpid())
    finally:
        os.close(fb)


def test_ofd_locks_conflict_between_nodes_and_outlive_other_closes(lk):
    # OFD locks belong to the open file description: two of one process,
    # one per node, conflict; closing another descriptor of the file (which
    # drops classic POSIX locks) leaves them; the last close of theirs ends them.
    fa, fb = open_rw(lk[0]), open_rw(lk[1])
    other = os.open(lk[0], os.O_RDONLY)
    try:
        setlk(fa, fcntl.F_OFD_SETLK, fcntl.F_WRLCK, 0, 100)
        with pytest.raises(OSError) as e:
            setlk(fb, fcntl.F_OFD_SETLK, fcntl.F_RDLCK, 50, 10)
        assert e.value.errno in LOCKED
        setlk(fb, fcntl.F_OFD_SETLK, fcntl.F_WRLCK, 100, 50)   # beside it: no conflict
        os.close(other)
        other = -1
        with pytest.raises(OSError) as e:
            setlk(fb, fcntl.F_OFD_SETLK, fcntl.F_WRLCK, 0, 10)
        assert e.value.errno in LOCKED
        with pytest.raises(OSError) as e:
            setlk(fa, fcntl.F_OFD_SETLK, fcntl.F_WRLCK, 120, 1)
        assert e.value.errno in LOCKED
        os.close(fa)
        fa = -1
        wait_for(lambda: granted(setlk, fb, fcntl.F_OFD_SETLK, fcntl.F_WRLCK, 0, 10), WITHIN,
                 "B's OFD lock after A's last close")
    finally:
        for fd in (fa, fb, other):
            if fd >= 0:
                os.close(fd)


def test_last_close_elsewhere_keeps_posix_locks_taken_since(lk):
    # This process locks through one description, closes its descriptor (its
    # locks go) while a child still holds that description, then locks
    # through another. The child's close is the first description's last:
    # that must not take this process's new lock with it.
    f1 = open_rw(lk[0])
    setlk(f1, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 10)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
            os.close(f1)
        finally:
            os._exit(0)
    os.close(r)
    os.close(f1)
    f2 = open_rw(lk[0])
    fb = open_rw(lk[1])
    try:
        setlk(f2, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 10)
        os.write(w, b"x")
        os.close(w)
        os.waitpid(pid, 0)
        time.sleep(1)   # the kernel sends the RELEASE in the background
        assert getlk(fb, fcntl.F_WRLCK, 0, 10)[0] == fcntl.F_WRLCK
    finally:
        os.close(f2)
        os.close(fb)


def test_posix_setlkw_on_b_waits_until_a_unlocks(lk, workers):
    wa, wb = workers(), workers()
    fa = wa("open", lk[0], os.O_RDWR)
    fb = wb("open", lk[1], os.O_RDWR)
    wa("setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 0)
    wb.start("setlk", fb, fcntl.F_SETLKW, fcntl.F_WRLCK, 10, 10)
    assert_waits(wb, "F_SETLKW on B")
    # A's lock is whole: B's waiting request holds nothing yet.
    assert wa("getlk", fa, fcntl.F_WRLCK, 0, 0)[0] == fcntl.F_UNLCK
    wa("setlk", fa, fcntl.F_SETLK, fcntl.F_UNLCK, 0, 0)
    wb.result()   # granted soon after
    assert wa("getlk", fa, fcntl.F_WRLCK, 0, 0) == (fcntl.F_WRLCK, 10, 10, wb.pid)
    assert wa("getlk", fa, fcntl.F_RDLCK, 15, 1) == (fcntl.F_WRLCK, 10, 10, wb.pid)
    wa("setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 20, 10)   # beside it: at once


def test_blocked_setlkw_on_b_is_interrupted_by_a_signal(lk, workers):
    wa, wb = workers(), workers()
    fa = wa("open", lk[0], os.O_RDWR)
    fb = wb("open", lk[1], os.O_RDWR)
    wa("setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 0)
    wb.start("setlkw_interruptible", fb, fcntl.F_WRLCK, 0, 10)
    assert_waits(wb, "F_SETLKW on B")
    os.kill(wb.pid, signal.SIGUSR1)
    assert wb.result(AT_ONCE, "end of F_SETLKW after a signal") == "interrupted"
    # It left no lock behind.
    assert wa("getlk", fa, fcntl.F_WRLCK, 0, 0)[0] == fcntl.F_UNLCK


def test_locks_of_a_killed_process_on_a_are_released(lk, workers):
    wa, wb, wc = workers(), workers(), workers()
    fa = wa("open", lk[0], os.O_RDWR)
    fa2 = wa("open", lk[0], os.O_RDWR)
    wa("setlk", fa, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 0)
    wa("flock", fa2, fcntl.LOCK_EX)
    fb = open_rw(lk[1])
    try:
        assert getlk(fb, fcntl.F_WRLCK, 0, 1) == (fcntl.F_WRLCK, 0, 0, wa.pid)
        # Processes on B wait for both locks meanwhile.
        fw = wb("open", lk[1], os.O_RDWR)
        wb.start("setlk", fw, fcntl.F_SETLKW, fcntl.F_WRLCK, 0, 10)
        fc = wc("open", lk[1], os.O_RDWR)
        wc.start("flock", fc, fcntl.LOCK_EX)
        assert_waits(wb, "F_SETLKW on B")
        assert_waits(wc, "flock(LOCK_EX) on B")
        wa.kill()   # the kernel closes its files: flush and release
        wb.result()
        wc.result()
        assert getlk(fb, fcntl.F_WRLCK, 0, 0) == (fcntl.F_WRLCK, 0, 10, wb.pid)
        setlk(fb, fcntl.F_SETLK, fcntl.F_WRLCK, 10, 0)   # the rest is free
    finally:
        os.close(fb)
