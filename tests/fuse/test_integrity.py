"""A seeded, randomized data-integrity run through the mount: a long mix of
writes, sparse pwrites, truncates, fallocate, hole punching, mmap and pread
reads, reopens and fsyncs on a few files, each checked byte for byte against
a copy kept in memory.

  STRIA_INTEGRITY_OPS  operations per run (default 100000; each cache mode
                       runs the full count)
  STRIA_TEST_SEED      replays a run (the seed is printed, and is in every
                       failure message)

Each file has two read-write descriptors (either may be reopened, with
O_TRUNC or O_APPEND at times); reads also go through fresh descriptors
(mmap, the periodic full checks) and, at the end, past the mount
(`stria get`).

The descriptors of one file in one mount must agree at every step, as on a
local file system: the run uses them interchangeably, with nothing between.
"""
import collections
import ctypes
import ctypes.util
import errno
import hashlib
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time

import pytest


OPS = int(os.environ.get("STRIA_INTEGRITY_OPS", "100000"))
NFILES = 3
KiB, MiB = 1 << 10, 1 << 20
# Files stay below this (offsets are drawn so that they mostly do); a few
# MiB cross many 64 KiB stripes on all three stores.
MAX_SIZE = 6 * MiB
STRIPE = "64k"

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.fallocate.restype = ctypes.c_int


def fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"fallocate(mode={mode:#x}, {off}, {length}): {os.strerror(e)}")


def first_diff(a, b):
    """Offset of the first differing byte of two equal-length buffers."""
    lo, hi = 0, len(a)
    # Whole 64 KiB blocks first: comparing slices runs in C.
    step = 64 * KiB
    while lo < hi and a[lo:lo + step] == b[lo:lo + step]:
        lo += step
    for i in range(lo, min(hi, lo + step)):
        if a[i] != b[i]:
            return i
    return None


def describe(got, want):
    d = [f"size {len(got)} (expected {len(want)})",
         f"sha256 {hashlib.sha256(got).hexdigest()[:16]} (expected {hashlib.sha256(want).hexdigest()[:16]})"]
    n = min(len(got), len(want))
    off = first_diff(memoryview(got)[:n], memoryview(want)[:n])
    if off is not None:
        end = off
        while end < n and end - off < 1 * MiB and got[end] != want[end]:
            end += 1
        d.append(f"first difference at {off} (0x{off:x}), differing run up to {end}: "
                 f"got {bytes(got[off:off + 16]).hex()} expected {bytes(want[off:off + 16]).hex()}")
    elif len(got) != len(want):
        d.append(f"the common {n} bytes are equal")
    return "; ".join(d)

# Reads through mmap happen in a helper process, started before the test
# opens any file: a page the mount fails to serve is a SIGBUS, which must
# fail the test rather than kill the session (stranding its mounts); and a
# forked child would close copies of our descriptors on exit, each close
# a FUSE flush (an fsync in Stria) that the run did not ask for.
_MAPPER = r"""
import mmap, os, struct, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
for line in inp:
    path, lo, hi = line.decode().rsplit(" ", 2)
    lo, hi = int(lo), int(hi)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            data = b""
            if size > 0 and hi > lo:
                with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as m:
                    data = m[lo:hi]
        finally:
            os.close(fd)
        out.write(struct.pack("<qq", size, len(data)) + data)
    except OSError as e:
        out.write(struct.pack("<qq", -1, e.errno))
    out.flush()
"""


class Mapper:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", _MAPPER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)

    def read(self, path, lo, hi):
        """(size at open, bytes [lo, hi) through a mapping), or an error text
        in place of the bytes."""
        self.proc.stdin.write(f"{path} {lo} {hi}\n".encode())
        self.proc.stdin.flush()
        head = self.proc.stdout.read(16)
        if len(head) < 16:
            rc = self.proc.wait()
            why = "SIGBUS (a page the mount did not serve)" if rc == -signal.SIGBUS else f"exit status {rc}"
            return -1, f"the reader died: {why}"
        size, n = struct.unpack("<qq", head)
        if size < 0:
            return -1, f"{errno.errorcode.get(n, n)}: {os.strerror(n)}"
        return size, self.proc.stdout.read(n)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


class Desc:
    """One read-write descriptor of a file, and its offset as we expect it."""

    def __init__(self, name):
        self.name = name
        self.fd = -1
        self.pos = 0
        self.append = False


class File:
    def __init__(self, path):
        self.path = path
        self.ref = bytearray()     # what the file must contain
        self.descs = [Desc("d0"), Desc("d1")]
        self.cur = 0               # the descriptor in use; it changes now and then
        self.history = collections.deque(maxlen=30)


class Run:
    def __init__(self, mount, directory, seed, ops):
        self.mount = mount
        self.dir = directory
        self.seed = seed
        self.ops = ops
        self.rng = random.Random(seed)
        # Written data comes from a seeded pool (slices at random offsets),
        # so that a replay writes the same bytes; not periodic, so that data
        # landing a stripe (or any distance) off shows.
        self.pool = self.rng.randbytes(4 * MiB)
        self.files = [File(os.path.join(directory, f"f{i}")) for i in range(NFILES)]
        self.i = 0
        self.counts = collections.Counter()
        self.mapper = None

    # -- failures carry what is needed to replay and understand them --
    def where(self, f):
        hist = "\n    ".join(f.history)
        return (f"\n  seed={self.seed} (replay: STRIA_TEST_SEED={self.seed} STRIA_INTEGRITY_OPS={self.ops}"
                f"), mode={self.mount.mode}, op #{self.i}, "
                f"file {f.path}\n  last operations on it:\n    {hist}")

    def check(self, cond, f, msg):
        if not cond:
            pytest.fail(f"{msg}{self.where(f)}", pytrace=False)

    def call(self, f, what, fn, *args):
        try:
            return fn(*args)
        except OSError as e:
            pytest.fail(f"{what} failed: {e!r}{self.where(f)}", pytrace=False)

    def data(self, n):
        o = self.rng.randrange(len(self.pool) - n + 1)
        return self.pool[o:o + n]

    def size_draw(self):
        """A transfer size: mostly small, sometimes up to 1 MiB."""
        r = self.rng.random()
        if r < 0.55:
            return self.rng.randint(1, 4 * KiB)
        if r < 0.92:
            return self.rng.randint(1, 128 * KiB)
        return self.rng.randint(1, 1 * MiB)

    def offset_draw(self, f):
        size = len(f.ref)
        r = self.rng.random()
        if r < 0.6:
            off = self.rng.randint(0, size)
        elif r < 0.85:
            off = size + self.rng.randint(0, 64 * KiB)
        else:
            off = size + self.rng.randint(64 * KiB, 2 * MiB)   # a sparse hole
        return min(off, MAX_SIZE - 1)

    # -- the reference --
    @staticmethod
    def ref_write(f, off, data):
        if off > len(f.ref):
            f.ref.extend(bytes(off - len(f.ref)))
        f.ref[off:off + len(data)] = data

    @staticmethod
    def ref_resize(f, size):
        if size < len(f.ref):
            del f.ref[size:]
        else:
            f.ref.extend(bytes(size - len(f.ref)))

    # -- operations through a descriptor --
    def open(self, f, k, trunc=False, append=False):
        d = f.descs[k]
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if trunc else 0) | (os.O_APPEND if append else 0)
        d.fd = self.call(f, "open", os.open, f.path, flags, 0o644)
        d.pos = 0
        d.append = append
        if trunc:
            f.ref.clear()

    def op_write(self, f, k):
        d = f.descs[k]
        n = self.size_draw()
        if d.append:
            n = min(n, MAX_SIZE - len(f.ref))
            if n <= 0:
                return                     # full: no write, the offset stays
            d.pos = len(f.ref)             # O_APPEND: every write goes to the end
        elif d.pos + n > MAX_SIZE:
            f.history.append(f"lseek {d.name} 0")
            d.pos = self.call(f, "lseek", os.lseek, d.fd, 0, os.SEEK_SET)
        data = self.data(n)
        f.history.append(f"write {d.name} {n} at pos {d.pos}{' (O_APPEND)' if d.append else ''}")
        got = self.call(f, "write", os.write, d.fd, data)
        self.check(got == n, f, f"short write: {got} of {n} bytes at {d.pos}")
        self.ref_write(f, d.pos, data)
        d.pos += n

    def op_pwrite(self, f, k):
        d = f.descs[k]
        n = self.size_draw()
        off = self.offset_draw(f)
        if off + n > MAX_SIZE:
            off = self.rng.randint(0, MAX_SIZE - n)
        at = off
        if d.append:
            # Linux: pwrite on an O_APPEND descriptor appends, whatever the offset.
            at = len(f.ref)
            n = min(n, MAX_SIZE - at)
            if n <= 0:
                return
        data = self.data(n)
        f.history.append(f"pwrite {d.name} {n} at {off} (size {len(f.ref)}){' (O_APPEND)' if d.append else ''}")
        got = self.call(f, "pwrite", os.pwrite, d.fd, data, off)
        self.check(got == n, f, f"short pwrite: {got} of {n} bytes at {off}")
        self.ref_write(f, at, data)

    def op_lseek(self, f, k):
        d = f.descs[k]
        if self.rng.random() < 0.5:
            want = len(f.ref)
            f.history.append(f"lseek {d.name} SEEK_END")
            got = self.call(f, "lseek", os.lseek, d.fd, 0, os.SEEK_END)
            self.check(got == want, f, f"lseek(0, SEEK_END) returned {got}, file size is {want}")
        else:
            want = self.offset_draw(f)
            f.history.append(f"lseek {d.name} {want}")
            got = self.call(f, "lseek", os.lseek, d.fd, want, os.SEEK_SET)
            self.check(got == want, f, f"lseek({want}) returned {got}")
        d.pos = got

    def op_truncate(self, f, k):
        d = f.descs[k]
        size = len(f.ref)
        r = self.rng.random()
        if r < 0.1:
            new = 0
        elif r < 0.55 or size >= MAX_SIZE // 2:
            new = self.rng.randint(0, size)                            # shrink
        else:
            new = min(MAX_SIZE, size + self.rng.randint(1, 2 * MiB))   # grow: zeros
        f.history.append(f"ftruncate {d.name} {size} -> {new}")
        self.call(f, "ftruncate", os.ftruncate, d.fd, new)
        self.ref_resize(f, new)

    def op_fallocate(self, f, k):
        d = f.descs[k]
        off = self.offset_draw(f)
        length = self.rng.randint(1, min(1 * MiB, MAX_SIZE - off))
        f.history.append(f"posix_fallocate {d.name} {off}+{length} (size {len(f.ref)})")
        self.call(f, "posix_fallocate", os.posix_fallocate, d.fd, off, length)
        if off + length > len(f.ref):
            self.ref_resize(f, off + length)

    def op_punch(self, f, k):
        d = f.descs[k]
        size = len(f.ref)
        off = self.rng.randint(0, size + 16 * KiB)
        length = self.size_draw()
        f.history.append(f"punch hole {d.name} {off}+{length} (size {size})")
        self.call(f, "fallocate(PUNCH_HOLE|KEEP_SIZE)", fallocate, d.fd,
                  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, length)
        end = min(off + length, size)
        if end > off:
            f.ref[off:end] = bytes(end - off)

    def op_zero(self, f, k):
        d = f.descs[k]
        size = len(f.ref)
        off = self.rng.randint(0, min(size + 16 * KiB, MAX_SIZE - 1))
        length = max(1, min(self.size_draw(), MAX_SIZE - off))
        keep = self.rng.random() < 0.5
        mode = FALLOC_FL_ZERO_RANGE | (FALLOC_FL_KEEP_SIZE if keep else 0)
        f.history.append(f"zero range {d.name} {off}+{length} keep={keep} (size {size})")
        self.call(f, f"fallocate({mode:#x})", fallocate, d.fd, mode, off, length)
        end = off + length if not keep else min(off + length, size)
        if end > size:
            self.ref_resize(f, end)
        if end > off:
            f.ref[off:end] = bytes(end - off)

    def op_pread(self, f, k):
        d = f.descs[k]
        off = self.rng.randint(0, len(f.ref) + 8 * KiB)
        n = self.size_draw()
        f.history.append(f"pread {d.name} {n} at {off} (size {len(f.ref)})")
        got = self.call(f, "pread", os.pread, d.fd, n, off)
        want = f.ref[off:off + n]
        if got != want:
            self.check(False, f, f"pread({n}, {off}) differs: {describe(got, want)} (offsets relative to {off})")

    def op_read(self, f, k):
        d = f.descs[k]
        n = self.size_draw()
        f.history.append(f"read {d.name} {n} at pos {d.pos} (size {len(f.ref)})")
        got = self.call(f, "read", os.read, d.fd, n)
        want = f.ref[d.pos:d.pos + n]
        if got != want:
            self.check(False, f, f"read({n}) at {d.pos} differs: {describe(got, want)} (offsets relative to {d.pos})")
        d.pos += len(got)

    def op_fsync(self, f, k):
        f.history.append(f"fsync {f.descs[k].name}")
        self.call(f, "fsync", os.fsync, f.descs[k].fd)

    def op_reopen(self, f, k):
        r = self.rng.random()
        trunc, append = r < 0.12, 0.12 <= r < 0.27
        d = f.descs[k]
        f.history.append(f"close {d.name}; reopen{' O_TRUNC' if trunc else ''}{' O_APPEND' if append else ''}")
        self.call(f, "close", os.close, d.fd)
        d.fd = -1
        self.open(f, k, trunc, append)

    def op_fstat(self, f, k):
        d = f.descs[k]
        f.history.append(f"fstat {d.name}")
        st = self.call(f, "fstat", os.fstat, d.fd)
        self.check(st.st_size == len(f.ref), f, f"fstat: size {st.st_size}, expected {len(f.ref)}")

    # -- reads through a new descriptor --
    def op_mmap(self, f, _k):
        if self.rng.random() < 0.2:
            lo, hi = 0, len(f.ref)
        else:
            lo = self.rng.randrange(len(f.ref) + 1)
            hi = min(len(f.ref), lo + self.size_draw())
        f.history.append(f"mmap read [{lo}, {hi}) (size {len(f.ref)})")
        size, got = self.call(f, "mmap read", self.mapper.read, f.path, lo, hi)
        if isinstance(got, str):
            self.check(False, f, f"mmap read [{lo}, {hi}): {got}")
        self.check(size == len(f.ref), f, f"fstat of a new descriptor: size {size}, expected {len(f.ref)}")
        want = f.ref[lo:hi]
        if got != want:
            self.check(False, f, f"mmap [{lo}, {hi}) differs: {describe(got, want)} (offsets relative to {lo})")

    def full_check(self, f, how):
        """The whole file, through a new descriptor, byte for byte."""
        f.history.append(f"full check ({how})")
        want = f.ref
        rfd = self.call(f, "open O_RDONLY", os.open, f.path, os.O_RDONLY)
        try:
            size = os.fstat(rfd).st_size
            chunks = []
            while True:
                b = self.call(f, "read", os.read, rfd, 1 * MiB)
                if not b:
                    break
                chunks.append(b)
        finally:
            os.close(rfd)
        got = b"".join(chunks)
        self.check(size == len(want), f, f"full check ({how}): fstat size {size}, expected {len(want)}")
        if got != want:
            self.check(False, f, f"full check ({how}) differs: {describe(got, want)}")

    def check_from_cluster(self, f):
        """The whole file past the mount and its kernel caches."""
        rel = "/" + os.path.relpath(f.path, self.mount.path)
        with tempfile.NamedTemporaryFile(prefix="stria-integrity-") as out:
            r = self.mount.cluster.stria("get", rel, out.name, check=False)
            self.check(r.returncode == 0, f, f"stria get {rel}: {r.stderr}")
            got = open(out.name, "rb").read()
        if got != f.ref:
            self.check(False, f, f"stria get (past the mount) differs: {describe(got, f.ref)}")

    # Weights: data ops dominate; the rest come often enough to interleave.
    WEIGHTS = {
        "write": 20, "pwrite": 20, "pread": 15, "read": 5, "lseek": 4, "truncate": 7,
        "fallocate": 4, "punch": 7, "zero": 3, "mmap": 6, "fsync": 4, "reopen": 4, "fstat": 4,
    }

    def run(self):
        names = list(self.WEIGHTS)
        weights = [self.WEIGHTS[n] for n in names]
        ops = {n: getattr(self, "op_" + n) for n in names}
        for f in self.files:
            self.open(f, 0, trunc=True)
            self.open(f, 1)
        every = max(200, self.ops // 60)
        for self.i in range(self.ops):
            f = self.rng.choice(self.files)
            if self.rng.random() < 0.1:
                f.cur = 1 - f.cur   # mostly runs on one descriptor, now and then the other
            name = self.rng.choices(names, weights)[0]
            self.counts[name] += 1
            ops[name](f, f.cur)
            if self.i % every == every - 1:
                self.full_check(f, "periodic")
        # The end: with the descriptors open, after their close, and past
        # the mount.
        for f in self.files:
            self.full_check(f, "end, descriptors open")
            for d in f.descs:
                self.call(f, "close", os.close, d.fd)
                d.fd = -1
            self.full_check(f, "end, after close")
            self.check_from_cluster(f)

    def close(self):
        if self.mapper:
            self.mapper.close()
        for f in self.files:
            for d in f.descs:
                if d.fd >= 0:
                    os.close(d.fd)
                    d.fd = -1


def test_random_integrity(mount, tdir):
    seed = int(os.environ.get("STRIA_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\nintegrity: seed={seed} ops={OPS} mode={mount.mode}")
    # Small stripes, on all three stores, so that the files cross many.
    d = os.path.join(tdir, "striped")
    os.mkdir(d)
    mount.cluster.stria("setstripe", "-c", "3", "-S", STRIPE, "/" + os.path.relpath(d, mount.path))
    run = Run(mount, d, seed, OPS)
    t0 = time.monotonic()
    try:
        run.mapper = Mapper()
        run.run()
    finally:
        run.close()
    dt = time.monotonic() - t0
    print(f"integrity: {OPS} ops in {dt:.1f} s ({OPS / dt:.0f} ops/s), seed={seed}, mode={mount.mode}, "
          f"counts {dict(run.counts)}, final sizes {[len(f.ref) for f in run.files]}")


# ------------------------- descriptors of one file agree (once bugs, now pinned) --

def test_write_visible_through_other_descriptor(tdir):
    p = os.path.join(tdir, "f")
    data = bytes(range(256)) * 40          # 10240 bytes: two whole pages and a part
    wfd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        assert os.write(wfd, data) == len(data)
        rfd = os.open(p, os.O_RDONLY)
        try:
            assert os.fstat(rfd).st_size == len(data)
            got = os.pread(rfd, 2 * len(data), 0)
        finally:
            os.close(rfd)
    finally:
        os.close(wfd)
    # As on any Linux file system: a write is visible to every reader once
    # write(2) has returned.
    assert got == data, f"read {len(got)} bytes through a second descriptor: {describe(got, data)}"


def test_truncate_cuts_unsynced_writes(tdir):
    p = os.path.join(tdir, "f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        assert os.write(fd, b"\xaa" * 1366) == 1366
        os.ftruncate(fd, 567)
        os.ftruncate(fd, 4096)                 # the bytes in [567, 4096) are zeros now
        want = b"\xaa" * 567 + bytes(4096 - 567)
        got = os.pread(fd, 8192, 0)
        assert got == want, f"through the descriptor: {describe(got, want)}"
    finally:
        os.close(fd)
    with open(p, "rb") as f:
        got = f.read()
    assert got == want, f"after close: {describe(got, want)}"


def test_overlapping_writes_through_two_descriptors(tdir):
    p = os.path.join(tdir, "f")
    a = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    b = os.open(p, os.O_RDWR)
    try:
        assert os.pwrite(a, b"A" * 100, 0) == 100
        assert os.pwrite(b, b"B" * 100, 0) == 100     # the later write wins
    finally:
        os.close(b)
        os.close(a)
    with open(p, "rb") as f:
        got = f.read()
    assert got == b"B" * 100, f"after both closed: {got[:16]!r}... ({describe(got, b'B' * 100)})"


def test_growth_visible_through_other_open_descriptor(tdir):
    p = os.path.join(tdir, "f")
    a = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    b = os.open(p, os.O_RDONLY)
    try:
        data = bytes(range(256)) * 40
        assert os.write(a, data) == len(data)
        os.fsync(a)
        got = os.pread(b, 2 * len(data), 0)
        assert got == data, f"after write and fsync through a: {describe(got, data)}"
        os.posix_fallocate(a, 0, 50000)
        got = os.pread(b, 50000, 0)
        want = data + bytes(50000 - len(data))
        assert got == want, f"after posix_fallocate through a: {describe(got, want)}"
    finally:
        os.close(b)
        os.close(a)


def test_overwrite_visible_through_other_open_descriptor(tdir):
    p = os.path.join(tdir, "f")
    old = b"o" * (4 * MiB)
    with open(p, "wb") as f:
        f.write(old)
    a = os.open(p, os.O_RDWR)
    b = os.open(p, os.O_RDONLY)
    try:
        os.pread(b, 4096, 0)                 # b reads ahead
        os.pwrite(a, b"N" * 8192, 100000)    # not page-aligned: the kernel asks for the edges
        os.fsync(a)
        got = os.pread(b, 8192, 100000)
        assert got == b"N" * 8192, f"after overwrite and fsync through a: {describe(got, b'N' * 8192)}"
        fallocate(a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 300000, 8192)
        got = os.pread(b, 8192, 300000)
        assert got == bytes(8192), f"after a punched hole through a: {describe(got, bytes(8192))}"
    finally:
        os.close(b)
        os.close(a)
