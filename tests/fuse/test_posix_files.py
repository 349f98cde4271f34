"""POSIX file semantics through the mount, with their errno: open flags,
truncate, fallocate, mknod, name length, xattrs, statfs. Each test runs in
both mount modes (conftest.MODES)."""
import errno
import json
import os
import stat
import subprocess

from conftest import ALICE, as_user, expect_errno
from posix_calls import (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
                         FALLOC_FL_ZERO_RANGE, fallocate)


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------- open flags --

def test_create_exclusive(tdir):
    p = os.path.join(tdir, "f")
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    expect_errno(errno.EEXIST, os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    # Without O_EXCL the existing file opens.
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    # O_EXCL fails on a dangling symlink too (it never follows).
    os.symlink("nowhere", os.path.join(tdir, "dangling"))
    expect_errno(errno.EEXIST, os.open, os.path.join(tdir, "dangling"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)


def test_open_missing_and_wrong_types(tdir):
    expect_errno(errno.ENOENT, os.open, os.path.join(tdir, "missing"), os.O_RDONLY)
    expect_errno(errno.ENOENT, os.open, os.path.join(tdir, "no", "such"), os.O_CREAT | os.O_WRONLY)
    os.mkdir(os.path.join(tdir, "d"))
    expect_errno(errno.EISDIR, os.open, os.path.join(tdir, "d"), os.O_WRONLY)
    expect_errno(errno.EISDIR, os.open, os.path.join(tdir, "d"), os.O_RDWR)
    write_file(os.path.join(tdir, "f"), b"x")
    expect_errno(errno.ENOTDIR, os.open, os.path.join(tdir, "f"), os.O_RDONLY | os.O_DIRECTORY)
    expect_errno(errno.ENOTDIR, os.open, os.path.join(tdir, "f", "x"), os.O_RDONLY)
    os.symlink("f", os.path.join(tdir, "l"))
    expect_errno(errno.ELOOP, os.open, os.path.join(tdir, "l"), os.O_RDONLY | os.O_NOFOLLOW)


def test_trunc_and_append(tdir):
    p = os.path.join(tdir, "f")
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    assert os.fstat(fd).st_size == 0
    os.write(fd, b"ab")
    os.close(fd)
    assert read_file(p) == b"ab"
    # Two appenders never overwrite each other.
    a = os.open(p, os.O_WRONLY | os.O_APPEND)
    b = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.write(a, b"11")
    os.write(b, b"22")
    os.write(a, b"33")
    os.close(a)
    os.close(b)
    assert read_file(p) == b"ab112233"
    # O_APPEND ignores the offset of pwrite's position? No: Linux appends.
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"!")
    os.close(fd)
    assert read_file(p) == b"ab112233!"


def test_read_write_modes(tdir):
    p = os.path.join(tdir, "f")
    write_file(p, b"data")
    fd = os.open(p, os.O_RDONLY)
    expect_errno(errno.EBADF, os.write, fd, b"x")
    os.close(fd)
    fd = os.open(p, os.O_WRONLY)
    expect_errno(errno.EBADF, os.read, fd, 1)
    os.close(fd)


def test_partial_page_writes_through_a_write_only_descriptor(tdir):
    # With the writeback cache the kernel reads the rest of a page it
    # writes part of, through the writing descriptor, even an O_WRONLY one:
    # the bytes around each write stay, and the process still cannot read.
    p = os.path.join(tdir, "f")
    base = os.urandom(3 * 4096 + 100)
    write_file(p, base)
    fd = os.open(p, os.O_WRONLY)
    try:
        os.pwrite(fd, b"AB", 10)
        os.pwrite(fd, b"CD", 2 * 4096 - 1)       # across a page boundary
        os.pwrite(fd, b"EF", len(base) + 50)     # past the end: a hole between
        expect_errno(errno.EBADF, os.read, fd, 1)
    finally:
        os.close(fd)
    want = bytearray(base)
    want[10:12] = b"AB"
    want[2 * 4096 - 1:2 * 4096 + 1] = b"CD"
    want += bytes(50) + b"EF"
    assert read_file(p) == bytes(want)


def test_empty_and_sparse(tdir):
    p = os.path.join(tdir, "f")
    write_file(p, b"")
    assert os.stat(p).st_size == 0
    assert read_file(p) == b""
    fd = os.open(p, os.O_WRONLY)
    os.pwrite(fd, b"end", 5 * 1024 * 1024)
    os.close(fd)
    data = read_file(p)
    assert len(data) == 5 * 1024 * 1024 + 3
    assert data[:-3] == bytes(5 * 1024 * 1024)
    assert data[-3:] == b"end"


# --------------------------------------------------------------- truncate --

def test_truncate_grow_and_shrink(tdir):
    p = os.path.join(tdir, "f")
    payload = os.urandom(3 * 1024 * 1024 + 17)
    write_file(p, payload)
    os.truncate(p, 1000)
    assert os.stat(p).st_size == 1000
    assert read_file(p) == payload[:1000]
    os.truncate(p, 2 * 1024 * 1024)
    data = read_file(p)
    assert data[:1000] == payload[:1000]
    assert data[1000:] == bytes(2 * 1024 * 1024 - 1000), "growing must read zeros, not old bytes"
    fd = os.open(p, os.O_RDWR)
    os.ftruncate(fd, 10)
    assert os.fstat(fd).st_size == 10
    os.ftruncate(fd, 0)
    os.write(fd, b"new")
    os.close(fd)
    assert read_file(p) == b"new"


def test_truncate_errors(tdir):
    d = os.path.join(tdir, "d")
    os.mkdir(d)
    expect_errno(errno.EISDIR, os.truncate, d, 0)
    p = os.path.join(tdir, "f")
    write_file(p, b"abc")
    fd = os.open(p, os.O_RDONLY)
    expect_errno(errno.EINVAL, os.ftruncate, fd, 0)
    os.close(fd)
    expect_errno(errno.EINVAL, os.truncate, p, -1)
    os.chmod(p, 0o444)
    expect_errno(errno.EACCES, as_user, ALICE, fn=lambda: os.truncate(p, 0))
    assert read_file(p) == b"abc", "a refused truncate must not cut the data"


def test_ftruncate_on_writable_descriptor_after_chmod(tdir):
    # Linux lets a descriptor opened for writing truncate even once the
    # mode no longer allows writing.
    p = os.path.join(tdir, "f")
    write_file(p, b"abcdef")
    os.chown(p, ALICE, ALICE)

    def shrink():
        fd = os.open(p, os.O_WRONLY)
        os.chmod(p, 0o444)
        os.ftruncate(fd, 2)
        os.close(fd)
    as_user(ALICE, fn=shrink)
    assert read_file(p) == b"ab"


# -------------------------------------------------------------- fallocate --

def test_fallocate_modes(tdir):
    p = os.path.join(tdir, "f")
    payload = os.urandom(300000)
    write_file(p, payload)
    fd = os.open(p, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, 1 << 20)   # mode 0 grows the size
        assert os.fstat(fd).st_size == 1 << 20
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4 << 20)
        assert os.fstat(fd).st_size == 1 << 20
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 150000)
        assert os.fstat(fd).st_size == 1 << 20
        expect_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_PUNCH_HOLE, 0, 10)
    finally:
        os.close(fd)
    want = bytearray(payload) + bytes((1 << 20) - len(payload))
    want[1000:151000] = bytes(150000)
    assert read_file(p) == bytes(want)


def test_seek_data_and_hole(tdir):
    """lseek's SEEK_DATA and SEEK_HOLE find what the stores hold; cp keeps
    the holes."""
    p = os.path.join(tdir, "sparse")
    mib = 1 << 20
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.pwrite(fd, b"a" * mib, 0)
        os.pwrite(fd, b"b" * mib, 5 * mib)
        os.ftruncate(fd, 9 * mib + 123)
        os.fsync(fd)
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 100, os.SEEK_HOLE) == mib
        assert os.lseek(fd, mib, os.SEEK_DATA) == 5 * mib
        assert os.lseek(fd, 3 * mib, os.SEEK_HOLE) == 3 * mib
        assert os.lseek(fd, 5 * mib + 7, os.SEEK_HOLE) == 6 * mib
        assert os.lseek(fd, 9 * mib, os.SEEK_HOLE) == 9 * mib
        expect_errno(errno.ENXIO, os.lseek, fd, 6 * mib, os.SEEK_DATA)
        expect_errno(errno.ENXIO, os.lseek, fd, 9 * mib + 123, os.SEEK_HOLE)
    finally:
        os.close(fd)
    copy = os.path.join(tdir, "copy")
    subprocess.run(["cp", "--sparse=always", p, copy], check=True)
    assert read_file(copy) == read_file(p)
    # The copy in the mount is sparse too: it holds the 2 MiB of data only.
    fd = os.open(copy, os.O_RDONLY)
    try:
        assert os.lseek(fd, mib, os.SEEK_DATA) == 5 * mib
    finally:
        os.close(fd)


def test_fallocate_zero_range(tdir):
    p = os.path.join(tdir, "f")
    payload = os.urandom(3 << 20)   # three 1 MiB stripes
    write_file(p, payload)
    want = bytearray(payload)
    fd = os.open(p, os.O_RDWR)
    try:
        # Inside the file, over a stripe boundary, at unaligned ends.
        fallocate(fd, FALLOC_FL_ZERO_RANGE, (1 << 20) - 5000, 12345)
        want[(1 << 20) - 5000:(1 << 20) + 7345] = bytes(12345)
        assert os.fstat(fd).st_size == 3 << 20
        # Past the end with KEEP_SIZE: the tail zeroed, the size kept.
        fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (3 << 20) - 100, 1 << 20)
        want[(3 << 20) - 100:] = bytes(100)
        assert os.fstat(fd).st_size == 3 << 20
        # Past the end without it: the size grows, the new bytes are zeros.
        fallocate(fd, FALLOC_FL_ZERO_RANGE, (3 << 20) - 10, 5000)
        want += bytes(5000 - 10)
        assert os.fstat(fd).st_size == (3 << 20) + 4990
        expect_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE, 0, 10)
        expect_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_COLLAPSE_RANGE, 0, 1 << 20)
    finally:
        os.close(fd)
    assert read_file(p) == bytes(want)


# ---------------------------------------------------------------- mknod --

def test_mknod_types(tdir):
    fifo = os.path.join(tdir, "fifo")
    os.mkfifo(fifo, 0o640)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert stat.S_IMODE(os.lstat(fifo).st_mode) == 0o640
    sock = os.path.join(tdir, "sock")
    os.mknod(sock, 0o600 | stat.S_IFSOCK)
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    chr_ = os.path.join(tdir, "chr")
    os.mknod(chr_, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    st = os.lstat(chr_)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    blk = os.path.join(tdir, "blk")
    os.mknod(blk, 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    assert stat.S_ISBLK(os.lstat(blk).st_mode) and os.lstat(blk).st_rdev == os.makedev(7, 0)
    expect_errno(errno.EEXIST, os.mkfifo, fifo)
    # Device nodes need privilege; FIFOs do not.
    expect_errno(errno.EPERM, as_user, ALICE,
                 fn=lambda: os.mknod(os.path.join(tdir, "c2"), 0o600 | stat.S_IFCHR, os.makedev(1, 3)))
    as_user(ALICE, fn=lambda: os.mkfifo(os.path.join(tdir, "fifo2")))
    assert os.lstat(os.path.join(tdir, "fifo2")).st_uid == ALICE


def test_fifo_carries_data_through_the_kernel(tdir):
    fifo = os.path.join(tdir, "fifo")
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:
        try:
            with open(fifo, "wb") as f:
                f.write(b"through the pipe")
        finally:
            os._exit(0)
    with open(fifo, "rb") as f:
        assert f.read() == b"through the pipe"
    os.waitpid(pid, 0)


# ----------------------------------------------------------------- names --

def test_name_length(tdir):
    ok = "n" * 255
    write_file(os.path.join(tdir, ok), b"x")
    assert ok in os.listdir(tdir)
    long = "n" * 256
    expect_errno(errno.ENAMETOOLONG, os.open, os.path.join(tdir, long), os.O_CREAT | os.O_WRONLY)
    expect_errno(errno.ENAMETOOLONG, os.mkdir, os.path.join(tdir, long))
    expect_errno(errno.ENAMETOOLONG, os.stat, os.path.join(tdir, long))
    expect_errno(errno.ENAMETOOLONG, os.rename, os.path.join(tdir, ok), os.path.join(tdir, long))


def test_readdir_lists_everything_once(tdir):
    names = {f"e{i:04d}" for i in range(600)}
    for n in names:
        os.close(os.open(os.path.join(tdir, n), os.O_CREAT | os.O_WRONLY))
    listed = os.listdir(tdir)
    assert len(listed) == len(names)
    assert set(listed) == names
    # "." and ".." are there for readdir(3) users.
    with os.scandir(tdir) as it:
        assert sum(1 for _ in it) == len(names)
    out = os.popen(f"ls -a {tdir} | head -2").read().split()
    assert out == [".", ".."]


def test_readdir_while_the_directory_changes(tdir):
    for i in range(300):
        os.close(os.open(os.path.join(tdir, f"a{i:03d}"), os.O_CREAT | os.O_WRONLY))
    seen = []
    with os.scandir(tdir) as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            if i == 10:
                # Entries present for the whole listing are seen exactly once.
                for j in range(100):
                    os.close(os.open(os.path.join(tdir, f"b{j:03d}"), os.O_CREAT | os.O_WRONLY))
                os.unlink(os.path.join(tdir, "a299"))
    stable = {f"a{i:03d}" for i in range(299)}
    assert len(seen) == len(set(seen)), "an entry came twice"
    assert stable <= set(seen)


# ---------------------------------------------------------------- xattrs --

def test_user_xattrs(tdir):
    p = os.path.join(tdir, "f")
    write_file(p, b"x")
    os.setxattr(p, "user.k", b"v1")
    assert os.getxattr(p, "user.k") == b"v1"
    expect_errno(errno.EEXIST, os.setxattr, p, "user.k", b"v2", os.XATTR_CREATE)
    os.setxattr(p, "user.k", b"v2", os.XATTR_REPLACE)
    assert os.getxattr(p, "user.k") == b"v2"
    expect_errno(errno.ENODATA, os.setxattr, p, "user.none", b"v", os.XATTR_REPLACE)
    expect_errno(errno.ENODATA, os.getxattr, p, "user.none")
    os.setxattr(p, "user.big", os.urandom(4000))
    assert sorted(os.listxattr(p)) == ["user.big", "user.k"]
    os.removexattr(p, "user.k")
    expect_errno(errno.ENODATA, os.removexattr, p, "user.k")
    assert os.listxattr(p) == ["user.big"]
    os.setxattr(p, "user.empty", b"")
    assert os.getxattr(p, "user.empty") == b""
    # user.* follows the file's permissions.
    os.chmod(p, 0o644)
    expect_errno(errno.EACCES, as_user, ALICE, fn=lambda: os.setxattr(p, "user.a", b"1"))
    assert as_user(ALICE, fn=lambda: os.getxattr(p, "user.big")) == os.getxattr(p, "user.big")


def test_trusted_xattrs_are_root_only(tdir):
    p = os.path.join(tdir, "f")
    write_file(p, b"x", 0o666)
    os.setxattr(p, "trusted.t", b"root")
    assert os.getxattr(p, "trusted.t") == b"root"
    expect_errno(errno.EPERM, as_user, ALICE, fn=lambda: os.setxattr(p, "trusted.u", b"1"))
    assert "trusted.t" not in as_user(ALICE, fn=lambda: os.listxattr(p))
    assert "trusted.t" in os.listxattr(p)


# ---------------------------------------------------------------- statfs --

def test_statfs_reports_the_cluster(mount, cluster):
    sv = os.statvfs(mount.path)
    status = json.loads(cluster.stria("cluster", "status", "--json").stdout)
    capacity = sum(t["capacity"] for t in status["targets"])
    assert sv.f_blocks * sv.f_frsize == capacity // sv.f_frsize * sv.f_frsize
    assert 0 < sv.f_bavail <= sv.f_blocks
    assert sv.f_namemax == 255
