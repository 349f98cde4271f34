"""Names through the mount: hard links and their counts, symlinks (dangling,
loops), rename in all its cases (renameat2 flags too), unlink of open
files, and ctime moving with every change to an inode."""
import errno
import os
import stat
import time

import pytest

from conftest import expect_errno
from posix_calls import RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2, utimensat


def put(path, data=b"x"):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.close(fd)


def get(path):
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------- hard links --

def test_hard_links_and_counts(tdir):
    a, b, c = (os.path.join(tdir, n) for n in "abc")
    put(a, b"shared")
    assert os.stat(a).st_nlink == 1
    os.link(a, b)
    os.mkdir(os.path.join(tdir, "sub"))
    os.link(a, os.path.join(tdir, "sub", "c"))
    assert os.stat(a).st_nlink == 3
    assert os.stat(a).st_ino == os.stat(b).st_ino
    put(b, b"changed")   # one inode: every name sees it
    assert get(a) == b"changed"
    os.unlink(a)
    assert os.stat(b).st_nlink == 2
    assert get(os.path.join(tdir, "sub", "c")) == b"changed"
    expect_errno(errno.EEXIST, os.link, b, os.path.join(tdir, "sub", "c"))
    expect_errno(errno.ENOENT, os.link, c, os.path.join(tdir, "d"))
    # No hard links to directories.
    expect_errno(errno.EPERM, os.link, os.path.join(tdir, "sub"), os.path.join(tdir, "sub2"))


def test_directory_link_counts(tdir):
    d = os.path.join(tdir, "d")
    os.mkdir(d)
    assert os.stat(d).st_nlink == 2
    os.mkdir(os.path.join(d, "x"))
    os.mkdir(os.path.join(d, "y"))
    assert os.stat(d).st_nlink == 4
    os.rename(os.path.join(d, "y"), os.path.join(tdir, "y"))
    assert os.stat(d).st_nlink == 3
    os.rmdir(os.path.join(d, "x"))
    assert os.stat(d).st_nlink == 2
    expect_errno(errno.ENOTEMPTY, os.rmdir, tdir)
    expect_errno(errno.ENOTDIR, os.rmdir, put(os.path.join(tdir, "f")) or os.path.join(tdir, "f"))
    expect_errno(errno.EISDIR, os.unlink, d)
    expect_errno(errno.EINVAL, os.rmdir, os.path.join(d, "."))


# --------------------------------------------------------------- symlinks --

def test_symlinks(tdir):
    target = os.path.join(tdir, "target")
    put(target, b"pointed at")
    rel = os.path.join(tdir, "rel")
    os.symlink("target", rel)
    assert os.readlink(rel) == "target"
    assert get(rel) == b"pointed at"
    st = os.lstat(rel)
    assert stat.S_ISLNK(st.st_mode) and st.st_size == len("target")
    assert os.stat(rel).st_ino == os.stat(target).st_ino
    # Dangling: lstat works, stat and open do not.
    dangling = os.path.join(tdir, "dangling")
    os.symlink("no/such/file", dangling)
    assert os.readlink(dangling) == "no/such/file"
    os.lstat(dangling)
    expect_errno(errno.ENOENT, os.stat, dangling)
    expect_errno(errno.ENOENT, open, dangling)
    # Creating through a dangling link creates its target (in this dir).
    os.symlink("made", os.path.join(tdir, "maker"))
    put(os.path.join(tdir, "maker"), b"via link")
    assert get(os.path.join(tdir, "made")) == b"via link"
    # A loop: ELOOP.
    os.symlink("loop2", os.path.join(tdir, "loop1"))
    os.symlink("loop1", os.path.join(tdir, "loop2"))
    expect_errno(errno.ELOOP, os.stat, os.path.join(tdir, "loop1"))
    expect_errno(errno.ELOOP, open, os.path.join(tdir, "loop1"))
    # Symlinks to directories are followed in the middle of a path.
    os.mkdir(os.path.join(tdir, "dir"))
    put(os.path.join(tdir, "dir", "in"), b"inside")
    os.symlink("dir", os.path.join(tdir, "dirlink"))
    assert get(os.path.join(tdir, "dirlink", "in")) == b"inside"
    # An absolute target and a long one survive as written.
    long_target = "/" + "x" * 1000
    os.symlink(long_target, os.path.join(tdir, "long"))
    assert os.readlink(os.path.join(tdir, "long")) == long_target
    expect_errno(errno.EEXIST, os.symlink, "t", rel)
    expect_errno(errno.EINVAL, os.readlink, target)


# ----------------------------------------------------------------- rename --

def test_rename_over_files_and_directories(tdir):
    a, b = os.path.join(tdir, "a"), os.path.join(tdir, "b")
    put(a, b"A")
    put(b, b"B")
    ino_a = os.stat(a).st_ino
    os.rename(a, b)   # over an existing file: replaced at once
    assert get(b) == b"A" and os.stat(b).st_ino == ino_a
    expect_errno(errno.ENOENT, os.stat, a)
    d1, d2 = os.path.join(tdir, "d1"), os.path.join(tdir, "d2")
    os.mkdir(d1)
    os.mkdir(d2)
    put(os.path.join(d1, "inside"))
    os.rename(d1, d2)   # over an empty directory
    assert os.listdir(d2) == ["inside"]
    os.mkdir(d1)
    expect_errno(errno.ENOTEMPTY, os.rename, d1, d2)      # over a non-empty one
    expect_errno(errno.EISDIR, os.rename, b, d1)          # file over directory
    expect_errno(errno.ENOTDIR, os.rename, d1, b)         # directory over file
    expect_errno(errno.EINVAL, os.rename, d2, os.path.join(d2, "sub"))   # into itself
    os.mkdir(os.path.join(d2, "deep"))
    expect_errno(errno.EINVAL, os.rename, d2, os.path.join(d2, "deep", "x"))
    expect_errno(errno.ENOENT, os.rename, os.path.join(tdir, "missing"), os.path.join(tdir, "m2"))
    expect_errno(errno.ENOTDIR, os.rename, os.path.join(b, "x"), os.path.join(tdir, "y"))
    # Renaming a name onto itself, or onto another link of the same file, does nothing.
    os.rename(b, b)
    os.link(b, os.path.join(tdir, "b2"))
    os.rename(b, os.path.join(tdir, "b2"))
    assert os.path.exists(b) and os.path.exists(os.path.join(tdir, "b2"))


def test_rename_across_directories_keeps_content(tdir):
    os.makedirs(os.path.join(tdir, "x", "y"))
    data = os.urandom(3 * 1024 * 1024)
    put(os.path.join(tdir, "x", "y", "f"), data)
    os.mkdir(os.path.join(tdir, "z"))
    os.rename(os.path.join(tdir, "x", "y"), os.path.join(tdir, "z", "y2"))
    assert get(os.path.join(tdir, "z", "y2", "f")) == data
    # ".." of the moved directory is its new parent.
    assert os.stat(os.path.join(tdir, "z", "y2", "..")).st_ino == os.stat(os.path.join(tdir, "z")).st_ino


def test_renameat2_flags(tdir):
    a, b = os.path.join(tdir, "a"), os.path.join(tdir, "b")
    put(a, b"A")
    put(b, b"B")
    expect_errno(errno.EEXIST, renameat2, a, b, RENAME_NOREPLACE)
    renameat2(a, os.path.join(tdir, "c"), RENAME_NOREPLACE)
    c = os.path.join(tdir, "c")
    renameat2(b, c, RENAME_EXCHANGE)
    assert get(b) == b"A" and get(c) == b"B"
    # A file and a directory swap too.
    d = os.path.join(tdir, "d")
    os.mkdir(d)
    put(os.path.join(d, "in"), b"in d")
    renameat2(c, d, RENAME_EXCHANGE)
    assert get(d) == b"B"
    assert get(os.path.join(c, "in")) == b"in d"
    expect_errno(errno.ENOENT, renameat2, b, os.path.join(tdir, "none"), RENAME_EXCHANGE)
    expect_errno(errno.EINVAL, renameat2, b, c, RENAME_EXCHANGE | RENAME_NOREPLACE)


# ------------------------------------------------------ unlink while open --

def test_unlinked_open_file_keeps_its_data(tdir):
    p = os.path.join(tdir, "f")
    data = os.urandom(2 * 1024 * 1024 + 5)
    put(p, data)
    fd = os.open(p, os.O_RDWR)
    os.unlink(p)
    expect_errno(errno.ENOENT, os.stat, p)
    assert os.pread(fd, len(data) + 10, 0) == data
    os.pwrite(fd, b"more", len(data))
    assert os.fstat(fd).st_size == len(data) + 4
    assert os.fstat(fd).st_nlink == 0
    os.close(fd)
    # The name can be reused at once for a new file.
    put(p, b"new")
    assert get(p) == b"new"


# ------------------------------------------------------------------ ctime --

def ctime(path):
    return os.lstat(path).st_ctime_ns


@pytest.mark.parametrize("change", [
    "chmod", "chown", "link", "unlink_one_link", "rename", "write", "truncate", "setxattr", "utimes",
])
def test_ctime_moves_with_every_change(tdir, change):
    p = os.path.join(tdir, "f")
    put(p, b"0123456789")
    before = ctime(p)
    # Each change comes a clock tick later: the kernel stamps the times it
    # keeps itself (the writeback cache's) from a coarse clock, as ext4 does,
    # so two changes within one tick carry the same ctime on any Linux.
    tick = 0.02
    time.sleep(tick)
    if change == "chmod":
        os.chmod(p, 0o600)
    elif change == "chown":
        os.chown(p, 1234, 1234)
    elif change == "link":
        os.link(p, p + ".2")
    elif change == "unlink_one_link":
        os.link(p, p + ".2")
        before = ctime(p)
        time.sleep(tick)
        os.unlink(p + ".2")
    elif change == "rename":
        os.rename(p, p + ".moved")
        p = p + ".moved"
    elif change == "write":
        fd = os.open(p, os.O_WRONLY)
        os.write(fd, b"x")
        os.fsync(fd)
        os.close(fd)
    elif change == "truncate":
        os.truncate(p, 3)
    elif change == "setxattr":
        os.setxattr(p, "user.x", b"1")
    elif change == "utimes":
        utimensat(p, (5, 0), (5, 0))
    assert ctime(p) > before, f"{change} did not move ctime"


def test_directory_times_move_with_entries(tdir):
    d = os.path.join(tdir, "d")
    os.mkdir(d)
    m0 = os.stat(d).st_mtime_ns
    put(os.path.join(d, "f"))
    m1 = os.stat(d).st_mtime_ns
    assert m1 > m0
    os.rename(os.path.join(d, "f"), os.path.join(d, "g"))
    m2 = os.stat(d).st_mtime_ns
    assert m2 > m1
    os.unlink(os.path.join(d, "g"))
    assert os.stat(d).st_mtime_ns > m2
