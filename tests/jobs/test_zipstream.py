"""`api.jobs.zipstream.ZipStream` against zipfile: the members it reads from local headers as
the bytes arrive are zipfile's, whatever the slicing; what it cannot read is deferred or left
to the directory, never guessed."""

import io
import os
import zipfile

import pytest

from api.jobs.zipstream import MAX_NAME_BYTES, ZipStream

LIMIT = 6000


class _Unseekable(io.RawIOBase):
    """A pipe-like output: zipfile then writes data descriptors after each member."""

    def __init__(self):
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)


def _archive(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED, *, pipe=False, zip64=False):
    out = _Unseekable() if pipe else io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            with archive.open(info, "w", force_zip64=zip64) as member:
                member.write(data)
    return bytes(out.data) if pipe else out.getvalue()


def _stream(archive: bytes, slice_size: int, limit: int = LIMIT) -> ZipStream:
    stream = ZipStream(limit)
    for start in range(0, len(archive), slice_size):
        stream.feed(archive[start : start + slice_size])
    return stream


def _members(count: int = 6) -> dict[str, bytes]:
    # Random bytes (incompressible) and runs (highly compressible), under the limit.
    return {f"in/{i}.bin": os.urandom(300 * i) + b"7" * (500 * i) for i in range(count)}


def _directory(archive: bytes) -> dict[int, zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {info.header_offset: info for info in opened.infolist()}


@pytest.mark.parametrize("slice_size", [1, 5, 97, 4096, 10**7])
@pytest.mark.parametrize(
    "method, pipe, zip64",
    [(zipfile.ZIP_STORED, False, False), (zipfile.ZIP_DEFLATED, False, False),
     (zipfile.ZIP_DEFLATED, True, False), (zipfile.ZIP_DEFLATED, False, True),
     (zipfile.ZIP_DEFLATED, True, True)],
    ids=["stored", "deflated", "deflated-descriptor", "zip64", "zip64-descriptor"],
)  # fmt: skip
def test_every_member_is_read_as_zipfile_reads_it(slice_size, method, pipe, zip64):
    members = _members()
    archive = _archive(members, method, pipe=pipe, zip64=zip64)
    stream = _stream(archive, slice_size)
    assert {m.name: m.data for m in stream.members} == members
    directory = _directory(archive)
    assert all(m.agrees(directory[m.offset]) for m in stream.members)
    assert stream.reached_directory and stream.resume_at is None


def test_a_stored_member_with_a_descriptor_has_no_size_so_the_directory_takes_over():
    archive = _archive(_members(), zipfile.ZIP_STORED, pipe=True)
    stream = _stream(archive, 4096)
    assert stream.members == [] and stream.resume_at == 0


def test_a_member_over_the_limit_is_skipped_unread_and_the_next_is_read():
    members = {"big.bin": os.urandom(LIMIT + 1), "a.bin": b"small"}
    stream = _stream(_archive(members), 1000)
    big, small = stream.members
    assert (big.too_large, big.data, small.data) == (True, None, b"small")


def test_a_deflate_bomb_is_never_inflated_past_the_limit():
    # 50 MB of zeros deflate to ~50 KB; the header lies that the member is small.
    archive = bytearray(_archive({"bomb.bin": bytes(50 * 10**6), "a.bin": b"after"}))
    header = archive.find(b"PK\x03\x04")
    archive[header + 22 : header + 26] = (100).to_bytes(4, "little")  # stated size: 100 bytes
    stream = _stream(bytes(archive), 65536)
    bomb, after = stream.members
    assert bomb.too_large and bomb.data is None and stream._inflated == bytearray()
    assert after.data == b"after"


def test_a_corrupt_member_is_deferred_and_the_next_still_read():
    archive = bytearray(_archive({"bad.bin": os.urandom(2000), "good.bin": b"good"}))
    start = archive.find(b"PK\x03\x04") + 30 + len("bad.bin")
    archive[start + 10 : start + 40] = bytes(30)
    stream = _stream(bytes(archive), 333)
    bad, good = stream.members
    assert (bad.deferred, bad.data, good.data) == (True, None, b"good")


@pytest.mark.parametrize(
    "offset, value",
    [(6, b"\x01\x00"), (8, b"\x0c\x00")],  # encrypted flag; bzip2 (zipfile reads it, we do not)
    ids=["encrypted", "other-method"],
)
def test_what_it_cannot_read_is_deferred_by_its_stated_size(offset, value):
    archive = bytearray(_archive({"a.bin": os.urandom(100), "b.bin": b"bee"}))
    archive[offset : offset + 2] = value  # the first local header
    first, second = _stream(bytes(archive), 64).members
    assert first.deferred and second.data == b"bee"


def test_a_local_header_that_disagrees_with_the_directory_is_told_apart():
    archive = bytearray(_archive({"a.bin": b"alpha", "b.bin": b"beta"}))
    archive[30:35] = b"x.bin"  # the first member's name, in its local header only
    stream = _stream(bytes(archive), 4096)
    directory = _directory(bytes(archive))
    assert [m.agrees(directory[m.offset]) for m in stream.members] == [False, True]


def test_bytes_that_are_no_local_header_stop_the_stream_where_they_start():
    archive = _archive({"a.bin": b"alpha"})
    directory = archive.find(b"PK\x01\x02")
    stream = _stream(archive[:directory] + b"junk" + archive[directory:], 7)
    assert [m.data for m in stream.members] == [b"alpha"] and stream.resume_at == directory


def test_a_truncated_archive_resumes_at_the_member_it_was_reading():
    archive = _archive({"a.bin": b"alpha", "b.bin": os.urandom(3000)}, zipfile.ZIP_STORED)
    second = archive.find(b"PK\x03\x04", 4)
    stream = _stream(archive[: second + 1000], 100)
    assert [m.name for m in stream.members] == ["a.bin"] and stream.resume_at == second


def test_a_name_longer_than_any_real_one_stops_the_stream_there():
    long_name = "x" * (MAX_NAME_BYTES + 1) + ".bin"
    archive = _archive({"a.bin": b"alpha", long_name: b"long", "b.bin": b"beta"})
    stream = _stream(archive, 4096)
    second = archive.find(b"PK\x03\x04", 4)
    assert [m.data for m in stream.members] == [b"alpha"] and stream.resume_at == second
