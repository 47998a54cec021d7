"""The one way to open an evidence file for reading: no symlink followed, nothing but a regular file, no access time.

Every read of evidence (intake hashing, loaders, analyses, archive and model readers, the log scanner, custody
verify) opens the file through :func:`open_evidence` (or :func:`read_bytes` / :func:`read_text`):

- ``lstat`` first: a symlink, FIFO, device, socket or directory is refused before anything is opened;
- ``os.open`` with ``O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOATIME``: a path swapped for a
  symlink is not followed (``ELOOP``), a path swapped for a FIFO does not block (``O_NONBLOCK``: the open returns at
  once even with no writer), a terminal never becomes the controlling one;
- ``fstat`` of the descriptor: anything that is not a regular file (a FIFO, device, socket or directory swapped in
  after intake) is closed and refused with :class:`NotRegularFile` naming the path; then ``O_NONBLOCK`` is cleared;
- the returned file object's ``fileno()`` can be memory-mapped (``np.memmap``, ``mmap``): the mapping shares the
  open file description, so ``O_NOATIME`` holds for page faults too.

Access times. ``O_NOATIME`` is permitted only to the file's owner (or with ``CAP_FOWNER``); otherwise ``open``
fails with ``EPERM`` and the file is opened again without it. Restoring the access time afterwards is *not* done:
measured on ext4 (Linux 6.x), ``os.utime(path, ns=(atime, mtime))`` always sets ``ctime`` to the current time,
which would change a timestamp examiners rely on more than atime; and setting explicit times needs the same
ownership that ``O_NOATIME`` lacked (``EPERM`` again). Each such file is recorded instead: its access time is "not
protected", and "changed" when ``fstat`` at close shows the kernel updated it (relatime updates it at most once a
day, or when it is older than mtime). :func:`atime_warnings` turns the record into one warning for the report.

Folders: :func:`scandir` lists one as ``os.scandir`` does, from a descriptor opened with ``O_NOATIME`` and
``O_NOFOLLOW | O_DIRECTORY``, so that walking the tree does not update the folders' access times either.

Errors are ``OSError`` subclasses so that every existing per-file ``except OSError`` records them as a warning and
the run goes on: :class:`NotRegularFile` (``EINVAL``), :class:`SymlinkRefused` (``ELOOP``), :class:`FileTooLarge`
(``EFBIG``, from the capped readers).
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = [
    "FileTooLarge",
    "NotRegularFile",
    "SymlinkRefused",
    "atime_record",
    "atime_warnings",
    "file_kind",
    "not_regular",
    "open_evidence",
    "read_bytes",
    "read_text",
    "reset_atime_record",
    "scandir",
]

_BASE_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_NOATIME = getattr(os, "O_NOATIME", 0)

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
}


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words (``"a FIFO (named pipe)"``, ``"a regular file"``)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def not_regular(path: str | os.PathLike[str]) -> str:
    """Why ``path`` can no longer be read as evidence ("" when it is still a regular file); never raises, opens nothing.

    For a file the inventory listed: a FIFO, device, socket, directory or symlink swapped in since, or the file gone.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "no longer there (removed after the inventory); not read"
    except OSError as exc:
        return f"cannot be examined: {exc.strerror or exc}; not read"
    if stat.S_ISREG(mode):
        return ""
    return f"no longer a regular file: now {file_kind(mode)} (swapped after the inventory); not read"


class NotRegularFile(OSError):
    """An evidence path that is not a regular file when it is opened (FIFO, device, socket, directory)."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({kind}); not read", str(path))
        self.kind = kind


class SymlinkRefused(OSError):
    """An evidence path that is (or became) a symbolic link: never followed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(errno.ELOOP, "a symbolic link; not followed", str(path))


class FileTooLarge(OSError):
    """A capped read found more bytes than the cap."""

    def __init__(self, path: str | os.PathLike[str], limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {limit} bytes; not read", str(path))
        self.limit = limit


# ------------------------------------------------------------------------------------------ access-time record
_lock = threading.Lock()
_not_protected: set[str] = set()
_changed: set[str] = set()


def atime_record() -> tuple[list[str], list[str]]:
    """``(not protected, changed)``: paths opened without ``O_NOATIME`` (EPERM) in this process, and those of them
    whose access time the kernel updated while the workbench had them open. Sorted."""
    with _lock:
        return sorted(_not_protected), sorted(_changed)


def reset_atime_record() -> None:
    """Forget the access-time record (tests; a long-lived process between runs)."""
    with _lock:
        _not_protected.clear()
        _changed.clear()


def atime_warnings(relative_to: str | os.PathLike[str] | None = None, *, examples: int = 3) -> list[tuple[str, str]]:
    """The access-time record as at most one ``(path, reason)`` warning for the report (empty when all was held).

    Args:
        relative_to: the case root; paths under it are shown relative to it, others are left out.
        examples: how many paths the reason names.
    """
    not_protected, changed = atime_record()
    if relative_to is not None:
        root = Path(relative_to).resolve()
        not_protected = _relative(not_protected, root)
        changed = _relative(changed, root)
    if not not_protected:
        return []
    named = ", ".join((changed or not_protected)[:examples])
    more = f" (e.g. {named})" if named else ""
    reason = (
        f"access time not preserved: {len(not_protected)} evidence file(s) not owned by the workbench's user could not "
        f"be opened with O_NOATIME (EPERM); the kernel updated the access time of {len(changed)}{more}. It is not "
        "restored: restoring it would set their ctime to now"
    )
    return [(changed[0] if changed else not_protected[0], reason)]


def _relative(paths: list[str], root: Path) -> list[str]:
    out = []
    for p in paths:
        try:
            out.append(Path(p).relative_to(root).as_posix())
        except ValueError:
            continue
    return out


class _EvidenceFile(io.FileIO):
    """A raw read-only file; at close, notes whether the access time moved when ``O_NOATIME`` was not permitted."""

    _watched: str | None = None
    _atime_ns: int = 0

    def close(self) -> None:
        if not self.closed and self._watched is not None:
            try:
                moved = os.fstat(self.fileno()).st_atime_ns != self._atime_ns
            except OSError:
                moved = False
            if moved:
                with _lock:
                    _changed.add(self._watched)
            self._watched = None
        super().close()


def _open_fd(path: str) -> tuple[int, bool]:
    """``(fd, noatime held)``: a regular file opened read-only, non-blocking cleared. Raises OSError subclasses."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    if stat.S_ISLNK(st.st_mode):
        raise SymlinkRefused(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(path, file_kind(st.st_mode))  # refused before open: no device is ever opened
    noatime = bool(_NOATIME)
    try:
        fd = os.open(path, _BASE_FLAGS | _NOATIME)
    except PermissionError:
        if not _NOATIME:
            raise
        noatime = False
        fd = os.open(path, _BASE_FLAGS)  # not the owner: O_NOATIME refused with EPERM, open without it
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkRefused(path) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # swapped between lstat and open
            raise NotRegularFile(path, file_kind(mode))
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd, noatime


def open_evidence(
    path: str | os.PathLike[str],
    *,
    binary: bool = True,
    buffering: int = -1,
    encoding: str = "utf-8",
    errors: str = "replace",
    newline: str | None = None,
) -> IO[Any]:
    """Open an evidence file for reading (see the module docstring for every guarantee).

    Args:
        path: the file; a symlink, FIFO, device, socket or directory is refused.
        binary: a binary stream (default) or, when False, a text stream.
        buffering: 0 for the raw unbuffered file (``readinto``), else the buffer size (-1: default).
        encoding, errors, newline: for a text stream.

    Returns:
        A buffered binary reader (or the raw file with ``buffering=0``, or a text wrapper); the caller closes it.

    Raises:
        NotRegularFile: the path is not a regular file (names the path and what it is).
        SymlinkRefused: the path is a symbolic link.
        OSError: it cannot be opened.
    """
    name = os.fspath(path)
    fd, noatime = _open_fd(name)
    try:
        raw = _EvidenceFile(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    if not noatime:
        absolute = str(Path(name).resolve())
        with _lock:
            _not_protected.add(absolute)
        raw._watched = absolute
        raw._atime_ns = os.fstat(fd).st_atime_ns
    if binary and buffering == 0:
        return raw
    buffered = io.BufferedReader(raw, buffer_size=buffering if buffering > 1 else io.DEFAULT_BUFFER_SIZE)
    if binary:
        return buffered
    return io.TextIOWrapper(buffered, encoding=encoding, errors=errors, newline=newline)


def read_bytes(path: str | os.PathLike[str], *, limit: int | None = None) -> bytes:
    """The whole content of an evidence file.

    Args:
        path: the file (opened with :func:`open_evidence`).
        limit: largest size read; a bigger file raises :class:`FileTooLarge` (checked on the open descriptor, and
            again while reading, so a file that grows is caught too).
    """
    with open_evidence(path, buffering=0) as fh:
        if limit is None:
            return fh.readall()
        if os.fstat(fh.fileno()).st_size > limit:
            raise FileTooLarge(path, limit)
        chunks: list[bytes] = []
        got = 0
        while got <= limit and (chunk := fh.read(min(1 << 20, limit + 1 - got))):
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise FileTooLarge(path, limit)
        return b"".join(chunks)


def read_text(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", errors: str = "replace", limit: int | None = None
) -> str:
    """The content of an evidence file decoded (bad bytes replaced by default); ``limit`` as :func:`read_bytes`."""
    return read_bytes(path, limit=limit).decode(encoding, errors)


class DirEntry:
    """An entry of :func:`scandir`, like ``os.DirEntry``: ``path`` is joined to the folder's path as given; ``stat``
    and the ``is_*`` tests ``lstat``/``stat`` that path once (cached), so they work after the listing is closed."""

    __slots__ = ("_lstat", "_stat", "name", "path")

    def __init__(self, name: str, parent: str) -> None:
        self.name = name
        self.path = os.path.join(parent, name)  # noqa: PTH118 - same string form as os.DirEntry.path
        self._lstat: os.stat_result | None = None
        self._stat: os.stat_result | None = None

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        if not follow_symlinks:
            if self._lstat is None:
                self._lstat = os.lstat(self.path)
            return self._lstat
        if self._stat is None:
            self._stat = Path(self.path).stat()
        return self._stat

    def _mode(self, follow_symlinks: bool) -> int:
        try:
            return self.stat(follow_symlinks=follow_symlinks).st_mode
        except FileNotFoundError:
            return 0

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return stat.S_ISDIR(self._mode(follow_symlinks))

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return stat.S_ISREG(self._mode(follow_symlinks))

    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self._mode(False))

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<safeio.DirEntry {self.name!r}>"


@contextmanager
def scandir(path: str | os.PathLike[str]) -> Iterator[Iterator[DirEntry]]:
    """List a folder of the evidence without updating its access time: ``with safeio.scandir(p) as it: ...``.

    A drop-in for ``os.scandir`` (entries have ``name``, ``path``, ``stat``, ``is_dir``, ``is_file``, ``is_symlink``).
    The folder is opened with ``O_NOFOLLOW | O_DIRECTORY`` (a folder swapped for a symlink is refused) and
    ``O_NOATIME`` when permitted (a folder of another owner is listed without it, and not recorded).

    Raises:
        OSError: the folder cannot be opened (``ENOTDIR`` for a symlink or anything but a folder).
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags | _NOATIME)
    except PermissionError:
        if not _NOATIME:
            raise
        fd = os.open(name, flags)  # not the owner: listing it updates its access time (folders are not recorded)
    try:
        with os.scandir(fd) as it:
            yield (DirEntry(entry.name, name) for entry in it)
    finally:
        os.close(fd)
