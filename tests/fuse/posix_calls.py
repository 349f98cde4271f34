"""System calls Python's os module lacks, through libc (ctypes): renameat2,
utimensat with UTIME_NOW/UTIME_OMIT, fallocate with flags, mknod helpers."""
import ctypes
import os

_libc = ctypes.CDLL("libc.so.6", use_errno=True)

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_COLLAPSE_RANGE = 0x08


def _check(rc, *names):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), *names[:1])


def renameat2(src, dst, flags):
    _libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    _check(_libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags), src)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime, follow=True):
    """atime/mtime: (sec, nsec), or UTIME_NOW / UTIME_OMIT."""
    def ts(v):
        if v in (UTIME_NOW, UTIME_OMIT):
            return _Timespec(0, v)
        return _Timespec(v[0], v[1])
    times = (_Timespec * 2)(ts(atime), ts(mtime))
    flags = 0 if follow else 0x100  # AT_SYMLINK_NOFOLLOW
    _libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_Timespec), ctypes.c_int]
    _check(_libc.utimensat(AT_FDCWD, os.fsencode(path), times, flags), path)


def fallocate(fd, mode, offset, length):
    _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    _check(_libc.fallocate(fd, mode, offset, length))
