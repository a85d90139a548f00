"""`LocalStorage`: a directory on this machine, written atomically, served with sendfile."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from .base import (
    COPY_CHUNK,
    TEMP_PREFIX,
    NotFound,
    ObjectInfo,
    Storage,
    _check_range,
    validate_key,
    validate_prefix,
)

PATHS_KEPT = 20_000


class LocalStorage(Storage):
    """Files in a directory; the web app serves them itself with sendfile and Range.

    Writes go to a temporary file in the target directory and are renamed over the final
    name, so a reader or a crash never sees half a file under a key. Directories are
    created as needed and removed again when deletes leave them empty.
    """

    kind: ClassVar[str] = "local"

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False, file_mode: int = 0o644) -> None:
        """Store under the absolute directory `root` (created on first write).

        `fsync` flushes each file to disk before it is renamed into place, trading speed
        for durability across power loss. `file_mode` lets a separate front server read
        the files.
        """
        root = Path(root)
        if not root.is_absolute():
            raise ValueError(f"The local storage root must be an absolute path, got {str(root)!r}.")
        self.root = root
        self.fsync = fsync
        self.file_mode = file_mode
        self._paths: dict[str, Path] = {}

    def describe(self) -> str:
        """Say which directory holds the files."""
        return f"local directory {self.root}"

    def local_path(self, key: str) -> Path:
        """The file under the root that backs `key` (remembered: checking a key costs more than
        sending a small playlist, and players ask for the same few again and again)."""
        try:
            return self._paths[key]
        except KeyError:
            pass
        if len(self._paths) >= PATHS_KEPT:
            self._paths.clear()
        path = self._paths[key] = self.root.joinpath(*validate_key(key).split("/"))
        return path

    def public_url(self, key: str) -> None:
        """Always None: the web app serves local files under its own URLs."""
        validate_key(key)
        return None

    async def put_file(
        self, key: str, src_path: str | os.PathLike[str], content_type: str | None = None
    ) -> None:
        """Copy the file into place atomically; `content_type` is not recorded locally."""
        final = self.local_path(key)
        await asyncio.to_thread(self._put_file, final, Path(src_path))

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write the bytes into place atomically; `content_type` is not recorded locally."""
        final = self.local_path(key)
        await asyncio.to_thread(self._atomic_write, final, lambda out: out.write(data))

    async def get_to_file(self, key: str, dst_path: str | os.PathLike[str]) -> None:
        """Copy the object to `dst_path` through a temporary file beside it."""
        path = self.local_path(key)
        await asyncio.to_thread(self._get_to_file, key, path, Path(dst_path))

    async def open_range(self, key: str, start: int, end: int) -> bytes:
        """Read the inclusive byte range from the file."""
        _check_range(start, end)
        path = self.local_path(key)
        return await asyncio.to_thread(self._read_range, key, path, start, end)

    async def delete(self, key: str) -> None:
        """Remove the file and any directories that become empty."""
        path = self.local_path(key)
        await asyncio.to_thread(self._delete, path)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove the folder's files and the directories left empty, up to the root."""
        folder = validate_prefix(prefix)
        if not folder:
            raise ValueError("Refusing to delete the whole storage: give a non-empty prefix.")
        return await asyncio.to_thread(self._delete_tree, self.root / folder)

    async def exists(self, key: str) -> bool:
        """Whether a regular file backs `key`."""
        path = self.local_path(key)
        return await asyncio.to_thread(path.is_file)

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and mtime of the file; the etag is derived from both."""
        path = self.local_path(key)
        return await asyncio.to_thread(self._stat, path)

    async def close(self) -> None:
        """Nothing to release: files are opened per call."""

    async def list(self, prefix: str = "") -> builtins.list[str]:
        """Walk the folder, skipping temporary files of writes in progress."""
        folder = validate_prefix(prefix)
        return await asyncio.to_thread(self._list, self.root / folder if folder else self.root)

    def _put_file(self, final: Path, src: Path) -> None:
        with src.open("rb") as fsrc:
            self._atomic_write(final, lambda out: shutil.copyfileobj(fsrc, out, COPY_CHUNK))

    def _get_to_file(self, key: str, path: Path, dst: Path) -> None:
        try:
            fsrc = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"No object {key!r} in {self.describe()}.") from exc
        with fsrc:
            self._atomic_write(dst, lambda out: shutil.copyfileobj(fsrc, out, COPY_CHUNK))

    def _atomic_write(self, final: Path, fill: Callable[[BinaryIO], Any]) -> None:
        fd, tmp = self._make_temp(final.parent)
        placed = False
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
            os.chmod(tmp, self.file_mode)
            os.replace(tmp, final)
            placed = True
        finally:
            if not placed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                self._prune(final.parent)

    @staticmethod
    def _make_temp(parent: Path) -> tuple[int, str]:
        for attempt in range(3):
            parent.mkdir(parents=True, exist_ok=True)
            try:
                return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=parent)
            except FileNotFoundError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read_range(self, key: str, path: Path, start: int, end: int) -> bytes:
        try:
            f = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"No object {key!r} in {self.describe()}.") from exc
        with f:
            f.seek(start)
            return f.read(end - start + 1)

    def _delete(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        self._prune(path.parent)

    def _delete_tree(self, folder: Path) -> int:
        if not folder.is_dir():
            return 0
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(folder, topdown=False):
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
            self._rmdir_if_empty(Path(dirpath))
        self._prune(folder.parent)
        return removed

    def _prune(self, directory: Path) -> None:
        while directory != self.root and directory.is_relative_to(self.root):
            if not self._rmdir_if_empty(directory):
                return
            directory = directory.parent

    @staticmethod
    def _rmdir_if_empty(directory: Path) -> bool:
        try:
            directory.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    @staticmethod
    def _stat(path: Path) -> ObjectInfo | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(
            size=st.st_size,
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _list(self, folder: Path) -> builtins.list[str]:
        keys = []
        for dirpath, _dirnames, filenames in os.walk(folder):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if not name.startswith(TEMP_PREFIX):
                    keys.append(name if rel == "." else f"{rel}/{name}")
        return sorted(keys)
