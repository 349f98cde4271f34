"""Permissions through the mount, as root and as other users (setuid in a
child process): chmod/chown rules, set-uid/set-gid clearing, the sticky
bit, EACCES/EPERM where Linux returns them, utimensat's rules. In the
"uncached" mode the kernel's own checks are off (the mount's default), so
these pass only if stria-meta enforces them with the caller's uid, gid and
supplementary groups."""
import errno
import os
import stat

from conftest import ALICE, BOB, CAROL, OTHERS, STAFF, as_user, expect_errno
from posix_calls import UTIME_NOW, UTIME_OMIT, utimensat


def touch(path, mode=0o644, data=b""):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


# ------------------------------------------------------------ chmod/chown --

def test_only_the_owner_or_root_may_chmod(tdir):
    p = os.path.join(tdir, "f")
    touch(p, 0o644)
    os.chown(p, ALICE, ALICE)
    as_user(ALICE, fn=lambda: os.chmod(p, 0o600))
    assert mode_of(p) == 0o600
    expect_errno(errno.EPERM, as_user, BOB, fn=lambda: os.chmod(p, 0o666))
    assert mode_of(p) == 0o600
    os.chmod(p, 0o640)   # root may
    assert mode_of(p) == 0o640


def test_chown_rules(tdir):
    p = os.path.join(tdir, "f")
    touch(p)
    os.chown(p, ALICE, ALICE)   # root gives a file away
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (ALICE, ALICE)
    # Only root gives a file away, also to oneself from another owner.
    expect_errno(errno.EPERM, as_user, ALICE, groups=[STAFF], fn=lambda: os.chown(p, BOB, -1))
    expect_errno(errno.EPERM, as_user, BOB, fn=lambda: os.chown(p, BOB, -1))
    # The owner may change the group to one of its groups, and only that.
    as_user(ALICE, groups=[STAFF], fn=lambda: os.chown(p, -1, STAFF))
    assert os.stat(p).st_gid == STAFF
    expect_errno(errno.EPERM, as_user, ALICE, groups=[STAFF], fn=lambda: os.chown(p, -1, OTHERS))
    # Not the owner: no group change even to one's own group.
    expect_errno(errno.EPERM, as_user, BOB, groups=[STAFF], fn=lambda: os.chown(p, -1, STAFF))
    # chown to the same ids is allowed for the owner (a no-op).
    as_user(ALICE, groups=[STAFF], fn=lambda: os.chown(p, ALICE, STAFF))


def test_chown_clears_setuid_and_setgid(tdir):
    p = os.path.join(tdir, "f")
    touch(p)
    os.chmod(p, 0o6755)
    os.chown(p, ALICE, ALICE)   # even root's chown clears them (group-executable: both)
    assert mode_of(p) == 0o755
    os.chmod(p, 0o6745)         # set-gid without group execute: a mandatory-lock mark, kept
    os.chown(p, BOB, BOB)
    assert mode_of(p) == 0o2745
    # Directories keep them.
    d = os.path.join(tdir, "d")
    os.mkdir(d)
    os.chmod(d, 0o2775)
    os.chown(d, ALICE, ALICE)
    assert mode_of(d) == 0o2775


def test_setgid_needs_group_membership(tdir):
    p = os.path.join(tdir, "f")
    touch(p)
    os.chown(p, ALICE, STAFF)
    # Alice is not in staff: chmod g+s is silently dropped, as Linux does.
    as_user(ALICE, fn=lambda: os.chmod(p, 0o2755))
    assert mode_of(p) == 0o755
    as_user(ALICE, groups=[STAFF], fn=lambda: os.chmod(p, 0o2755))
    assert mode_of(p) == 0o2755


def test_write_clears_setuid(tdir):
    p = os.path.join(tdir, "f")
    touch(p, data=b"0123")
    os.chmod(p, 0o4777)

    def write():
        fd = os.open(p, os.O_WRONLY)
        os.write(fd, b"x")
        os.close(fd)
    as_user(BOB, fn=write)
    assert mode_of(p) == 0o777
    # Root's writes keep it.
    os.chmod(p, 0o4777)
    write()
    assert mode_of(p) == 0o4777
    # Group-executable set-gid goes too on a write without privilege.
    os.chmod(p, 0o6777)
    as_user(BOB, fn=write)
    assert mode_of(p) == 0o777


def test_a_group_writer_writes_and_closes_a_file_it_does_not_own(tdir):
    # Its close sends the time of its writes (the writeback cache does, as a
    # chosen mtime): allowed to a writer, and the mtime moves.
    p = os.path.join(tdir, "f")
    with open(p, "wb") as f:
        f.write(b"0" * 10)
    os.chown(p, ALICE, STAFF)
    os.chmod(p, 0o664)
    os.utime(p, ns=(10**9, 10**9))

    def write():
        fd = os.open(p, os.O_WRONLY)
        os.pwrite(fd, b"bob", 2)
        os.close(fd)
    as_user(BOB, STAFF, [STAFF], fn=write)
    with open(p, "rb") as f:
        assert f.read() == b"00bob00000"
    assert os.stat(p).st_mtime_ns > 10**9


def test_truncate_clears_setuid(tdir):
    p = os.path.join(tdir, "f")
    touch(p, data=b"0123")
    os.chmod(p, 0o4766)
    as_user(BOB, fn=lambda: os.truncate(p, 1))
    assert mode_of(p) == 0o766
    assert os.stat(p).st_size == 1


# -------------------------------------------------------------- sticky bit --

def test_sticky_directory(tdir):
    d = os.path.join(tdir, "tmp")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    a = os.path.join(d, "alice")
    as_user(ALICE, fn=lambda: touch(a))
    # Others may not remove or rename it; the file's owner, the directory's
    # owner (root here) may.
    expect_errno(errno.EPERM, as_user, BOB, fn=lambda: os.unlink(a))
    expect_errno(errno.EPERM, as_user, BOB, fn=lambda: os.rename(a, os.path.join(d, "bob")))
    b = os.path.join(d, "bobs")
    as_user(BOB, fn=lambda: touch(b))
    expect_errno(errno.EPERM, as_user, BOB, fn=lambda: os.rename(b, a))   # over alice's
    as_user(ALICE, fn=lambda: os.rename(a, os.path.join(d, "alice2")))
    as_user(ALICE, fn=lambda: os.unlink(os.path.join(d, "alice2")))
    os.unlink(b)
    # A directory owned by Carol with the sticky bit: Carol may remove anything.
    d2 = os.path.join(tdir, "carols")
    os.mkdir(d2)
    os.chown(d2, CAROL, CAROL)
    os.chmod(d2, 0o1777)
    x = os.path.join(d2, "x")
    as_user(ALICE, fn=lambda: touch(x))
    as_user(CAROL, fn=lambda: os.unlink(x))


# ------------------------------------------------------- EACCES and EPERM --

def test_directory_permissions(tdir):
    d = os.path.join(tdir, "d")
    os.mkdir(d)
    touch(os.path.join(d, "f"))
    os.chown(d, ALICE, ALICE)
    os.chmod(d, 0o700)
    # No search permission: nothing inside can be reached.
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.stat(os.path.join(d, "f")))
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.listdir(d))
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: touch(os.path.join(d, "g")))
    # Search but no read: names can be reached but not listed.
    os.chmod(d, 0o711)
    as_user(BOB, fn=lambda: os.stat(os.path.join(d, "f")))
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.listdir(d))
    # Read and search but no write: no new names, no removal, no rename.
    os.chmod(d, 0o755)
    assert as_user(BOB, fn=lambda: os.listdir(d)) == ["f"]
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: touch(os.path.join(d, "g")))
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.mkdir(os.path.join(d, "e")))
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.unlink(os.path.join(d, "f")))
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.rename(os.path.join(d, "f"), os.path.join(d, "h")))
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.symlink("x", os.path.join(d, "l")))
    # Group permission through a supplementary group.
    os.chown(d, ALICE, STAFF)
    os.chmod(d, 0o770)
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.listdir(d))
    assert as_user(BOB, BOB, [STAFF], fn=lambda: os.listdir(d)) == ["f"]
    as_user(BOB, BOB, [STAFF], fn=lambda: touch(os.path.join(d, "bobs")))
    # The owner's bits decide for the owner, even when "other" allows more.
    os.chmod(d, 0o077)
    expect_errno(errno.EACCES, as_user, ALICE, fn=lambda: os.listdir(d))


def test_file_permissions(tdir):
    p = os.path.join(tdir, "f")
    touch(p, data=b"secret")
    os.chown(p, ALICE, STAFF)
    os.chmod(p, 0o640)
    assert as_user(ALICE, fn=lambda: open(p, "rb").read()) == b"secret"
    assert as_user(BOB, BOB, [STAFF], fn=lambda: open(p, "rb").read()) == b"secret"
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: open(p, "rb").read())
    expect_errno(errno.EACCES, as_user, BOB, BOB, [STAFF], fn=lambda: os.open(p, os.O_WRONLY))
    expect_errno(errno.EACCES, as_user, BOB, BOB, [STAFF], fn=lambda: os.open(p, os.O_RDWR))
    expect_errno(errno.EACCES, as_user, BOB, BOB, [STAFF], fn=lambda: os.open(p, os.O_RDONLY | os.O_TRUNC))
    assert open(p, "rb").read() == b"secret"
    # Root reads and writes whatever the mode says.
    os.chmod(p, 0o000)
    assert open(p, "rb").read() == b"secret"
    # access(2) answers the same questions.
    os.chmod(p, 0o640)
    assert as_user(BOB, BOB, [STAFF], fn=lambda: os.access(p, os.R_OK))
    assert not as_user(BOB, BOB, [STAFF], fn=lambda: os.access(p, os.W_OK))
    assert not as_user(BOB, fn=lambda: os.access(p, os.R_OK))
    assert os.access(p, os.R_OK | os.W_OK)
    # Execute needs an x bit even for root.
    assert not os.access(p, os.X_OK)
    os.chmod(p, 0o650)
    assert os.access(p, os.X_OK)
    assert as_user(BOB, BOB, [STAFF], fn=lambda: os.access(p, os.X_OK))
    assert not as_user(ALICE, fn=lambda: os.access(p, os.X_OK))


def test_link_and_rename_need_permission(tdir):
    src = os.path.join(tdir, "src")
    dst = os.path.join(tdir, "dst")
    os.mkdir(src)
    os.mkdir(dst)
    touch(os.path.join(src, "f"))
    # Bob's own file: fs.protected_hardlinks does not stand in the way.
    os.chown(os.path.join(src, "f"), BOB, BOB)
    os.chmod(dst, 0o755)
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.link(os.path.join(src, "f"), os.path.join(dst, "f")))
    os.chmod(src, 0o755)
    os.chmod(dst, 0o777)
    expect_errno(errno.EACCES, as_user, BOB,
                 fn=lambda: os.rename(os.path.join(src, "f"), os.path.join(dst, "f")))
    # Moving a directory needs write permission on it (its ".." changes).
    os.chmod(src, 0o777)
    sub = os.path.join(src, "sub")
    os.mkdir(sub)
    os.chmod(sub, 0o755)
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: os.rename(sub, os.path.join(dst, "sub")))
    os.chmod(sub, 0o777)
    as_user(BOB, fn=lambda: os.rename(sub, os.path.join(dst, "sub")))


# -------------------------------------------------------------- utimensat --

def test_utimensat_rules(tdir):
    p = os.path.join(tdir, "f")
    touch(p)
    os.chown(p, ALICE, ALICE)
    os.chmod(p, 0o666)
    utimensat(p, (1000, 5), (2000, 7))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1000 * 10**9 + 5, 2000 * 10**9 + 7)
    # UTIME_OMIT leaves a time as it is; UTIME_NOW sets it to now.
    utimensat(p, UTIME_OMIT, (3000, 0))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1000 * 10**9 + 5, 3000 * 10**9)
    utimensat(p, UTIME_NOW, UTIME_OMIT)
    st = os.stat(p)
    assert st.st_atime_ns > 1000 * 10**9 + 5 and st.st_mtime_ns == 3000 * 10**9
    # A writer who is not the owner may set both to now, not to a chosen time.
    as_user(BOB, fn=lambda: utimensat(p, UTIME_NOW, UTIME_NOW))
    assert os.stat(p).st_mtime_ns > 3000 * 10**9
    expect_errno(errno.EPERM, as_user, BOB, fn=lambda: utimensat(p, (1, 0), (1, 0)))
    expect_errno(errno.EPERM, as_user, BOB, fn=lambda: utimensat(p, UTIME_OMIT, (1, 0)))
    # Without write permission, not even "now".
    os.chmod(p, 0o644)
    expect_errno(errno.EACCES, as_user, BOB, fn=lambda: utimensat(p, UTIME_NOW, UTIME_NOW))
    # The owner may always.
    as_user(ALICE, fn=lambda: utimensat(p, (5, 0), (6, 0)))
    assert os.stat(p).st_mtime_ns == 6 * 10**9
