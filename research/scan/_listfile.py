"""A user's list file (domain list, opt-out list): opened by its content, read a line at a time.

Lists arrive as researchers get them: Tranco and Umbrella serve a zip, archives keep gzip, bzip2 or
xz. The compression is recognised by the first bytes, never the name, so a pipe reads like a file.
The text is split into lines on the bytes and each line decoded as it is pulled, so a reader that
stops after N entries has read the file only that far (a block ahead), and memory does not grow
with the file. The format manual is in ``data/README.md``.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import gzip
import hashlib
import io
import lzma
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, TypeVar

from research.errors import InputError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BLOCK_SIZE = 1 << 16
"""Bytes read at a time; also how far ahead of the last line used the file may have been read."""
MAX_LINE = 1 << 20
"""A longer line means the file is not a list (and holding it would let memory grow)."""

_NEWLINE = re.compile(rb"\r\n|\r|\n")
_MAGIC: tuple[tuple[tuple[bytes, ...], str], ...] = (
    ((b"\x1f\x8b",), "gzip"),
    ((b"\xfd7zXZ\x00",), "xz"),
    ((b"PK\x03\x04", b"PK\x05\x06"), "zip"),  # an archive with members, an empty archive
)
_BZIP2_BLOCK = (b"1AY&SY", b"\x17rE8P\x90")  # first block, or end of an empty stream
_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"Rar!\x1a\x07", "RAR"),
)
_HEAD = 16

T = TypeVar("T")


def compression_of(head: bytes) -> str | None:
    """``gzip``, ``bzip2``, ``xz`` or ``zip`` from a file's first bytes; None for anything else."""
    for magics, name in _MAGIC:
        if head.startswith(magics):
            return name
    # "BZh" alone could begin a line of text: the block-size digit and block magic make it sure.
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[3:4] != b"0" \
            and head[4:10] in _BZIP2_BLOCK:
        return "bzip2"
    return None


class ListFile:
    """One open list file, by path or as a binary stream (standard input): its ``name``, its
    ``compression`` (``gzip``, ``bzip2``, ``xz``, ``zip`` or None) and, in a zip, the ``member``
    read; :meth:`lines` reads it, :meth:`sha256` checksums the bytes as given.

    A path is closed with the file; a stream given is left open. ``what`` names the list in
    errors ("domain list").

    Raises:
        InputError: the file cannot be opened, is a directory, is compressed in a way not read
            here, or is a zip that does not hold exactly one file.
    """

    def __init__(self, source: str | Path | IO[bytes], what: str) -> None:
        self.what = what
        self.compression: str | None = None
        self.member: str | None = None
        self._stack = contextlib.ExitStack()
        if isinstance(source, str | Path):
            self.name = str(source)
            self._source = self._stack.enter_context(_open(Path(source), what))
        else:
            self.name = str(getattr(source, "name", "<stream>"))
            self._source = source
        try:
            self._start = self._source.tell() if self._source.seekable() else None
            self._hashing = _Hashing(self._source)
            buffered = io.BufferedReader(self._hashing, BLOCK_SIZE)
            head = self._read(lambda: buffered.peek(_HEAD)[:_HEAD])
            self.compression = compression_of(head)
            for magic, name in _UNSUPPORTED:
                if head.startswith(magic):
                    raise InputError(f"{self.name}: {name}-compressed; unpack it first "
                                     "(gzip, bzip2, xz and zip are read as they are)")
            self._data = self._unpacked(buffered)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ListFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(line number, text)`` of every line, without its ending (``\\n``, ``\\r\\n`` or
        ``\\r``; a UTF-8 byte-order mark is dropped), read and decoded as they are pulled.

        Raises:
            InputError: a NUL byte in the first block or in a line read (a binary file), a line
                read that is not UTF-8 or is longer than :data:`MAX_LINE`, or compressed data
                that is corrupt or truncated.
        """
        number, rest, first = 0, b"", True
        while block := self._read(lambda: self._data.read(BLOCK_SIZE)):
            if first and b"\x00" in block:
                raise self._binary()
            first = False
            data, held = rest + block, b""
            if data.endswith(b"\r"):
                data, held = data[:-1], b"\r"  # the \r of a \r\n the next block completes
            parts = _NEWLINE.split(data)
            rest = parts.pop() + held
            if len(rest) > MAX_LINE:
                raise InputError(f"{self.name}: line {number + len(parts) + 1} is longer than "
                                 f"{MAX_LINE:,} bytes: not {_a(self.what)}")
            for part in parts:
                number += 1
                yield number, self._decode(part, number)
        if rest:
            yield number + 1, self._decode(rest.removesuffix(b"\r"), number + 1)

    def sha256(self) -> str:
        """SHA-256 (hex) of the file's bytes as given (compressed, if they were), reading what
        :meth:`lines` left unread."""
        if self.compression == "zip" and self._start is not None:
            # The archive was read by seeking about in it: hash it again from the start.
            self._source.seek(self._start)
            digest = hashlib.sha256()
            while chunk := self._read(lambda: self._source.read(BLOCK_SIZE)):
                digest.update(chunk)
            return digest.hexdigest()
        while self._read(lambda: self._hashing.read(BLOCK_SIZE)):
            pass
        return self._hashing.digest.hexdigest()

    def _unpacked(self, buffered: IO[bytes]) -> IO[bytes] | io.BufferedIOBase:
        if self.compression == "gzip":
            return gzip.GzipFile(fileobj=buffered, mode="rb")
        if self.compression == "bzip2":
            return bz2.BZ2File(buffered)
        if self.compression == "xz":
            return lzma.LZMAFile(buffered)
        if self.compression == "zip":
            return self._zip_member(buffered)
        return buffered

    def _zip_member(self, buffered: IO[bytes]) -> IO[bytes]:
        if self._start is not None:
            self._source.seek(self._start)
            archive_file: IO[bytes] = self._source
        else:
            # A pipe: the member list is at the archive's end, so the archive goes to disk first.
            archive_file = self._read(lambda: self._stack.enter_context(_spooled(buffered)))
        archive = self._stack.enter_context(self._read(lambda: zipfile.ZipFile(archive_file)))
        files = [i for i in archive.infolist()
                 if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
        if len(files) != 1:
            names = ", ".join(i.filename for i in files[:3]) + (", …" if len(files) > 3 else "")
            raise InputError(f"{self.name}: a zip archive of {len(files)} files"
                             + (f" ({names})" if files else "")
                             + f", not of one {self.what}; unpack the one to read")
        info = files[0]
        if info.flag_bits & 0x1:
            raise InputError(f"{self.name}: {info.filename} in the zip archive is encrypted")
        self.member = info.filename
        try:
            return archive.open(info)
        except NotImplementedError as exc:
            raise InputError(f"{self.name}: {info.filename}: {exc}") from None

    def _read(self, read: Callable[[], T]) -> T:
        """``read()``, with a failure of the file or its compressed data as one InputError."""
        try:
            return read()
        except EOFError:
            raise InputError(f"{self.name}: {self.compression or 'compressed'} data ends early "
                             "(a truncated download?)") from None
        except (OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
            reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            reason = " ".join(reason.split())
            if self.compression is None:
                raise InputError(f"{self.name}: cannot read {self.what} ({reason})") from None
            raise InputError(f"{self.name}: corrupt {self.compression} data ({reason})") from None

    def _decode(self, data: bytes, number: int) -> str:
        if b"\x00" in data:
            raise self._binary()
        if number == 1:
            data = data.removeprefix(codecs.BOM_UTF8)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{self.name}: line {number} is not UTF-8 text; {_a(self.what)} "
                             "must be UTF-8") from None

    def _binary(self) -> InputError:
        inside = f" (inside {self.compression})" if self.compression else ""
        return InputError(f"{self.name}: binary file{inside}, not {_a(self.what)}")


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _open(path: Path, what: str) -> IO[bytes]:
    try:
        return path.open("rb")
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not {_a(what)}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


@contextlib.contextmanager
def _spooled(stream: IO[bytes]) -> Iterator[IO[bytes]]:
    """The rest of ``stream`` in a temporary file, at its start."""
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(stream, spool, BLOCK_SIZE)
        spool.seek(0)
        yield spool


class _Hashing(io.RawIOBase):
    """A stream's bytes as they are read, hashed on the way: each byte once, in order."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._stream.read(len(view))
        view[:len(data)] = data
        self.digest.update(data)
        return len(data)
