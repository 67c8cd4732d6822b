"""A ZIP's members read from their local headers while the archive is still arriving.

A ZIP's directory is at its end, but every member starts with a local header (name, method,
CRC, sizes) and a deflate stream marks its own end, so members can be read as the bytes come
in. `ZipStream` is a push parser over those headers: bytes in, finished members out. It takes
only what it is sure of and leaves everything else to the directory, read with `zipfile` once
the whole archive has arrived (the upload keeps a copy of it for that):

- a member it cannot read now (encrypted, a method other than stored or deflate, a CRC or size
  that does not match, corrupt deflate data) is *deferred*: skipped by its stated size and read
  from the directory later, so it gets exactly the answer it always got;
- where it cannot find the next header (a stored member with a data descriptor has no size; a
  deflate stream that breaks before its descriptor; bytes that are no local header) it *stops*:
  every member from that offset on is read from the directory.

The upload then checks every member it took against the directory (`agrees`): a ZIP whose
local headers and directory disagree is read from its directory alone. Deflated output is
capped at `limit + 1` bytes, as zipfile's bounded read is (zip bombs).
"""

import struct
import zipfile
import zlib
from dataclasses import dataclass

LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # signature, version, flags, method, time, date,
# CRC, compressed size, size, name length, extra length
LOCAL_SIGNATURE = b"PK\x03\x04"
DIRECTORY_SIGNATURES = (b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")
DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
ENCRYPTED, DESCRIPTOR, PATCHED, STRONG_ENCRYPTION, UTF8_NAME = 0x01, 0x08, 0x20, 0x40, 0x800
UNREADABLE_NOW = ENCRYPTED | PATCHED | STRONG_ENCRYPTION
ZIP64_EXTRA = 0x0001
# Every member read is kept (its header, for the check against the directory): a longer name
# stops the stream, so that 20,000 members cannot hold 64 KiB names each in memory. The
# directory takes over there, its size checked before zipfile reads it.
MAX_NAME_BYTES = 1024
ZIP64_SIZE = 0xFFFF_FFFF


@dataclass
class Member:
    offset: int  # of its local header, from the start of the archive
    orig_name: str  # decoded as zipfile decodes it
    flags: int
    method: int
    crc: int
    compress_size: int
    file_size: int
    data: bytes | None = None  # the content, once read (None: too large, deferred or taken)
    too_large: bool = False  # more than `limit` bytes: not kept
    deferred: bool = False  # to be read from the directory instead
    zip64: bool = False  # its header has a ZIP64 field: a data descriptor's sizes are 8 bytes

    @property
    def name(self) -> str:
        """zipfile's `ZipInfo.filename`: the name cut at its first NUL."""
        return self.orig_name.split("\0", 1)[0]

    def agrees(self, info: zipfile.ZipInfo) -> bool:
        """The directory's entry at this member's offset says what its local header said."""
        return (info.orig_filename, info.flag_bits, info.compress_type, info.CRC,
                info.compress_size, info.file_size) == (
                self.orig_name, self.flags, self.method, self.crc, self.compress_size,
                self.file_size)  # fmt: skip


class ZipStream:
    """Feed the archive's bytes in any slices; `feed` returns the members finished by them."""

    def __init__(self, limit: int):
        self.limit = limit
        self.members: list[Member] = []  # every member finished, in archive order
        self.stopped_at: int | None = None  # read from the directory from this offset on
        self.reached_directory = False
        self._buffer = bytearray()
        self._position = 0  # offset of _buffer[0] in the archive
        self._member: Member | None = None
        self._left = 0  # compressed bytes of the current member still to come (known size)
        self._inflater = None
        self._inflated = bytearray()
        self._read = 0  # compressed bytes of the current member read so far
        self._step = self._header
        self._finished: list[Member] = []

    @property
    def resume_at(self) -> int | None:
        """Where the directory must take over: None if every member was streamed."""
        if self.stopped_at is not None:
            return self.stopped_at
        if self.reached_directory:
            return None
        return self._member.offset if self._member is not None else self._position

    def feed(self, chunk: bytes) -> list[Member]:
        if self.stopped_at is not None or self.reached_directory:
            return []
        self._buffer += chunk
        while self.stopped_at is None and not self.reached_directory and self._step():
            pass
        finished, self._finished = self._finished, []
        return finished

    def halt(self, member: Member) -> None:
        """Stop at this member (the upload will not take it now): the directory reads it."""
        self.members.remove(member)
        self._stop(member.offset)

    # --- steps: each returns True when it made progress, False when it needs more bytes --------

    def _stop(self, offset: int) -> None:
        self.stopped_at = offset
        self._buffer = bytearray()
        self._member = self._inflater = None

    def _consume(self, count: int) -> None:
        del self._buffer[:count]  # O(1) at the front of a bytearray
        self._position += count

    def _header(self) -> bool:
        buffer = self._buffer
        if len(buffer) < 4:
            return False
        if bytes(buffer[:4]) in DIRECTORY_SIGNATURES:
            self.reached_directory = True
            self._buffer = bytearray()
            return False
        if bytes(buffer[:4]) != LOCAL_SIGNATURE:
            self._stop(self._position)
            return False
        if len(buffer) < LOCAL_HEADER.size:
            return False
        fields = LOCAL_HEADER.unpack_from(buffer)
        if fields[9] > MAX_NAME_BYTES:
            self._stop(self._position)
            return False
        name_end = LOCAL_HEADER.size + fields[9]
        if len(buffer) < name_end + fields[10]:
            return False
        member = _member(self._position, fields, bytes(buffer[LOCAL_HEADER.size : name_end]),
                         bytes(buffer[name_end : name_end + fields[10]]))  # fmt: skip
        if member is None:
            self._stop(self._position)
            return False
        self._consume(name_end + fields[10])
        self._begin(member)
        return True

    def _begin(self, member: Member) -> None:
        """Choose how to read the member whose header was just read."""
        self._member, self._read = member, 0
        self._left = member.compress_size
        sized = not member.flags & DESCRIPTOR
        readable = not member.flags & UNREADABLE_NOW and member.method in (
            zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # fmt: skip
        if not sized and (not readable or member.method == zipfile.ZIP_STORED):
            self._stop(member.offset)  # no size to skip it by: the directory reads from here
        elif not readable or (
            member.method == zipfile.ZIP_STORED and member.compress_size != member.file_size
        ):
            member.deferred = True
            self._step = self._skip
        elif sized and member.file_size > self.limit:
            member.too_large = True
            self._step = self._skip
        elif member.method == zipfile.ZIP_STORED:
            self._step = self._stored
        else:
            self._inflater, self._inflated = zlib.decompressobj(-15), bytearray()
            self._step = self._inflate

    def _skip(self) -> bool:
        count = min(self._left, len(self._buffer))
        self._consume(count)
        self._left -= count
        if self._left:
            return False
        self._finish(None)
        return True

    def _stored(self) -> bool:
        if len(self._buffer) < self._left:
            return False
        with memoryview(self._buffer) as view:
            data = bytes(view[: self._left])  # one copy, not two
        self._consume(self._left)
        self._finish(data)
        return True

    def _inflate(self) -> bool:
        member, sized = self._member, not self._member.flags & DESCRIPTOR
        take = min(self._left, len(self._buffer)) if sized else len(self._buffer)
        if not take:
            return False
        inflater = self._inflater
        try:
            with memoryview(self._buffer) as view:
                self._inflated += inflater.decompress(
                    view[:take], self.limit + 1 - len(self._inflated)
                )
        except zlib.error:
            return self._give_up_member(sized)
        used = take - len(inflater.unconsumed_tail) - len(inflater.unused_data)
        self._consume(used)
        self._read += used
        self._left -= used if sized else 0
        if len(self._inflated) > self.limit:
            member.too_large = True
            return self._give_up_member(sized)
        if inflater.eof:
            return self._inflated_all(sized)
        if sized and not self._left:  # its stated size is used up, the stream has not ended
            return self._give_up_member(sized)
        return used > 0

    def _give_up_member(self, sized: bool) -> bool:
        """Not read here: skip it by its stated size (deferred unless too large), or stop."""
        if not sized:
            self._stop(self._member.offset)
            return False
        self._member.deferred = not self._member.too_large
        self._inflater = None
        self._step = self._skip
        return True

    def _inflated_all(self, sized: bool) -> bool:
        self._inflater = None
        if not sized:
            self._step = self._descriptor
        elif self._left:  # bytes after the stream's end, within its stated size
            self._member.deferred = True
            self._step = self._skip
        else:
            self._finish(bytes(self._inflated))
        return True

    def _descriptor(self) -> bool:
        """CRC and sizes after a member's data: 12 or 20 bytes (ZIP64), the signature optional.
        The sizes must be the ones just read, which also tells the two layouts apart."""
        if len(self._buffer) < 24:  # a directory (or another member) follows in any case
            return False
        member, read = self._member, (self._read, len(self._inflated))
        signed = bytes(self._buffer[:4]) == DESCRIPTOR_SIGNATURE
        layouts = (("<3I", 12), ("<I2Q", 20))
        for start in (4, 0) if signed else (0,):
            for layout, length in layouts[::-1] if member.zip64 else layouts:
                crc, compressed, actual = struct.unpack_from(layout, self._buffer, start)
                if (compressed, actual) == read:
                    member.crc, member.compress_size, member.file_size = crc, compressed, actual
                    self._consume(start + length)
                    self._finish(bytes(self._inflated))
                    return True
        self._stop(member.offset)
        return False

    def _finish(self, data: bytes | None) -> None:
        member = self._member
        if data is not None and (len(data) != member.file_size or zlib.crc32(data) != member.crc):
            member.deferred = True  # zipfile says what is wrong with it
        elif data is not None:
            member.data = data
        self.members.append(member)
        self._finished.append(member)
        self._member, self._inflated, self._step = None, bytearray(), self._header


def _member(offset: int, fields: tuple, raw_name: bytes, extra: bytes) -> Member | None:
    """The member a local header describes; None if its name or ZIP64 sizes cannot be read."""
    flags, method, crc, compress_size, file_size = fields[2], fields[3], *fields[6:9]
    try:
        name = raw_name.decode("utf-8" if flags & UTF8_NAME else "cp437")
    except UnicodeDecodeError:
        return None
    zip64 = _extra_field(extra, ZIP64_EXTRA)
    if ZIP64_SIZE in (compress_size, file_size):
        try:  # the sizes set to 0xFFFFFFFF, in zipfile's order
            if file_size == ZIP64_SIZE:
                (file_size,), zip64 = struct.unpack_from("<Q", zip64), zip64[8:]
            if compress_size == ZIP64_SIZE:
                (compress_size,) = struct.unpack_from("<Q", zip64)
        except (struct.error, TypeError):  # no ZIP64 field, or too short
            return None
    return Member(offset, name, flags, method, crc, compress_size, file_size, zip64=bool(zip64))


def _extra_field(extra: bytes, wanted: int) -> bytes | None:
    """The data of one field of a header's extra block, if it has that field."""
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<2H", extra)
        if kind == wanted:
            return extra[4 : 4 + length]
        extra = extra[4 + length :]
    return None
