"""ZIP members through the upload receiver (`api.jobs.upload.UploadReceiver._take_zip`): each
refusal with its code, its member's name and its reason; the byte limit at its boundary; what is
skipped. Written against the mutants that passed every other test (docs/mutation.md)."""

import io
import uuid
import zipfile

import pytest

from api.jobs.upload import Limits, UploadReceiver, UploadRefused
from devtools.scans import scans, zip_of
from digitflow.storage import LocalStorage
from tests.jobs.test_upload import multipart
from tests.jobs.test_zipstream import _archive

(_, PNG, _), (_, OTHER, _) = scans(2, start=40)


def _receive(tmp_path, archive: bytes, *, max_image_bytes=100_000, max_files=10):
    limits = Limits(max_files, max_image_bytes, 10**6, 10**7)
    storage = LocalStorage(tmp_path)
    body, boundary = multipart([("files", ("pack.zip", archive))])
    receiver = UploadReceiver(boundary, uuid.uuid4(), storage, limits, lambda _: None, lambda: 100)
    receiver.feed(body, final=True)
    return receiver, storage


def _refusals(receiver) -> list[tuple[str, str, str]]:
    return [(r.filename, r.code, r.reason) for r in receiver.rejected]


def _stored(receiver, storage) -> dict[str, bytes]:
    return {d["filename"]: storage.get(d["storage_key"]) for d in receiver.pending}


def test_members_are_named_inside_their_archive_and_stored_whole(tmp_path):
    archive = zip_of({"a.png": PNG, "scans/b.png": OTHER, "__MACOSX/._a.png": b"junk"})
    receiver, storage = _receive(tmp_path, archive)
    assert _stored(receiver, storage) == {"pack.zip/a.png": PNG, "pack.zip/scans/b.png": OTHER}
    assert receiver.rejected == [] and receiver.refused == 0


def test_folders_and_macos_metadata_are_skipped_not_refused(tmp_path):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("scans/", b"")
        archive.writestr("__MACOSX/scans/._a.png", b"\x00\x05\x16\x07")
        archive.writestr("scans/a.png", PNG)
    receiver, storage = _receive(tmp_path, out.getvalue())
    assert list(_stored(receiver, storage)) == ["pack.zip/scans/a.png"]
    assert (receiver.accepted, receiver.refused) == (1, 0)


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "deflated"])
def test_a_member_at_the_byte_limit_is_taken_and_one_byte_over_is_refused(tmp_path, stored):
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        archive.writestr("a.png", PNG)
    receiver, storage = _receive(tmp_path / "at", out.getvalue(), max_image_bytes=len(PNG))
    assert _stored(receiver, storage) == {"pack.zip/a.png": PNG}
    receiver, _ = _receive(tmp_path / "over", out.getvalue(), max_image_bytes=len(PNG) - 1)
    assert _refusals(receiver) == [(
        "pack.zip/a.png", "image_too_large",
        f"the file is larger than the limit of {len(PNG) - 1} bytes",
    )]  # fmt: skip
    assert receiver.pending == []


def _patched(archive: bytes, local_offset: int, central_offset: int, value: bytes) -> bytes:
    """`archive` with the same field changed in its one member's local and central headers."""
    data = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        at = data.find(signature) + offset
        data[at : at + len(value)] = value
    return bytes(data)


def test_a_corrupt_member_is_refused_alone(tmp_path):
    archive = bytearray(zip_of({"bad.png": PNG, "good.png": OTHER}))
    start = archive.find(b"PK\x03\x04") + 30 + len("bad.png")
    archive[start + 10 : start + 40] = bytes(30)  # deflated data overwritten
    receiver, storage = _receive(tmp_path, bytes(archive))
    ((name, code, reason),) = _refusals(receiver)
    assert (name, code) == ("pack.zip/bad.png", "corrupt_zip_member")
    assert reason.startswith("the ZIP member is corrupt: ")
    assert list(_stored(receiver, storage)) == ["pack.zip/good.png"]


@pytest.mark.parametrize(
    "field, value, says",
    [
        ((6, 8), b"\x01\x00", "is encrypted"),  # general-purpose flag bit 0
        ((8, 10), b"\x61\x00", "compression method"),  # method 97: not one zipfile knows
    ],
    ids=["encrypted", "unknown-method"],
)
def test_a_member_that_cannot_be_extracted_says_why(tmp_path, field, value, says):
    archive = _patched(zip_of({"a.png": PNG, "b.png": OTHER}), *field, value)  # the first one
    receiver, storage = _receive(tmp_path, archive)
    ((name, code, reason),) = _refusals(receiver)
    assert (name, code) == ("pack.zip/a.png", "unsupported_zip_member")
    assert reason.startswith("cannot extract: ") and says in reason
    assert _stored(receiver, storage) == {"pack.zip/b.png": OTHER}  # the next one is read


def test_a_member_over_the_limit_does_not_stop_the_next(tmp_path):
    archive = zip_of({"big.png": bytes(len(PNG) + 1), "a.png": PNG})
    receiver, storage = _receive(tmp_path, archive, max_image_bytes=len(PNG))
    assert [(r.filename, r.code) for r in receiver.rejected] == [
        ("pack.zip/big.png", "image_too_large")
    ]
    assert _stored(receiver, storage) == {"pack.zip/a.png": PNG}


@pytest.mark.parametrize("inner", [zip_of({"a.png": PNG}), zip_of({})], ids=["zip", "empty-zip"])
def test_zips_inside_zips_are_not_opened(tmp_path, inner):
    receiver, _ = _receive(tmp_path, zip_of({"inner.zip": inner, "a.png": PNG}))
    assert _refusals(receiver) == [
        ("pack.zip/inner.zip", "nested_zip", "ZIP archives inside ZIPs are not opened")
    ]
    assert receiver.accepted == 1


def test_a_member_that_is_no_image_gets_the_decoders_code(tmp_path):
    receiver, _ = _receive(tmp_path, zip_of({"notes.txt": b"not an image"}))
    ((name, code, reason),) = _refusals(receiver)
    assert (name, code) == ("pack.zip/notes.txt", "undecodable_image")
    assert "not an image" in reason


def test_a_broken_archive_is_refused_as_a_whole(tmp_path):
    receiver, _ = _receive(tmp_path, b"PK\x03\x04" + bytes(200))
    ((name, code, reason),) = _refusals(receiver)
    assert (name, code) == ("pack.zip", "invalid_zip")
    assert reason.startswith("not a readable ZIP archive: ")


def test_an_archive_with_more_entries_than_files_allowed_is_refused_unread(tmp_path):
    members = {f"{i}.png": PNG for i in range(3)}
    receiver, _ = _receive(tmp_path / "over", zip_of(members), max_files=2)
    ((name, code, reason),) = _refusals(receiver)
    assert (name, code) == ("pack.zip", "zip_too_large")
    assert reason.startswith("the ZIP holds 3 entries (") and "at most 2 files" in reason
    receiver, _ = _receive(tmp_path / "at", zip_of(members), max_files=3)
    assert receiver.accepted == 3 and receiver.rejected == []


# --- read while it streams in (api.jobs.zipstream) ----------------------------------------------


def _streaming(tmp_path, archive: bytes, *, flush_every=2, max_files=10):
    """A receiver fed the upload in 1 KB slices, and the batches it handed over."""
    limits = Limits(max_files, 100_000, 10**6, 10**7)
    storage = LocalStorage(tmp_path)
    body, boundary = multipart([("files", ("pack.zip", archive))])
    flushed: list[list[dict]] = []
    receiver = UploadReceiver(
        boundary, uuid.uuid4(), storage, limits, flushed.append, lambda: flush_every
    )
    slices = [body[start : start + 1024] for start in range(0, len(body), 1024)]
    return receiver, storage, flushed, slices


def _pngs(count: int) -> dict[str, bytes]:
    return {f"{i:02d}.png": data for i, (_, data, _) in enumerate(scans(count, start=40))}


def test_members_are_handed_over_before_the_zip_has_arrived(tmp_path):
    members = _pngs(6)
    archive = zip_of(members)
    receiver, storage, flushed, slices = _streaming(tmp_path, archive)
    directory = len(slices) * 1024 - (len(archive) - archive.find(b"PK\x01\x02"))
    arrived = 0
    for piece in slices:
        if arrived + len(piece) >= directory:
            break  # the directory has not arrived yet
        receiver.feed(piece)
        arrived += len(piece)
    assert [len(batch) for batch in flushed] == [2, 2, 2]  # every member already handed over
    for piece in slices[arrived // 1024 :]:
        receiver.feed(piece)
    receiver.feed(b"", final=True)
    stored = {d["filename"]: storage.get(d["storage_key"]) for b in [*flushed, receiver.pending]
              for d in b}  # fmt: skip
    assert stored == {f"pack.zip/{name}": data for name, data in members.items()}
    assert [d["position"] for b in [*flushed, receiver.pending] for d in b] == list(range(6))


def test_a_truncated_zip_after_members_were_queued_refuses_the_whole_upload(tmp_path):
    archive = zip_of(_pngs(6))
    cut = archive[: archive.find(b"PK\x01\x02")]  # no directory: the ZIP never ended
    receiver, _, flushed, slices = _streaming(tmp_path, cut)
    with pytest.raises(UploadRefused) as refused:
        for piece in slices:
            receiver.feed(piece)
        receiver.feed(b"", final=True)
    assert (refused.value.status_code, refused.value.code) == (422, "invalid_zip")
    assert "pack.zip: not a readable ZIP archive" in refused.value.detail
    assert "whole upload is refused" in refused.value.detail
    assert sum(map(len, flushed)) == 6  # what the caller must now discard with the job
    receiver.discard()
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_a_truncated_zip_with_nothing_queued_yet_is_refused_as_one_file(tmp_path):
    archive = zip_of(_pngs(3))
    cut = archive[: archive.find(b"PK\x01\x02")]
    receiver, _, flushed, slices = _streaming(tmp_path, cut, flush_every=100)
    for piece in slices:
        receiver.feed(piece)
    receiver.feed(b"", final=True)
    assert flushed == [] and receiver.pending == [] and receiver.accepted == 0
    assert [(r.filename, r.code) for r in receiver.rejected] == [("pack.zip", "invalid_zip")]
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]  # members read: gone


def test_more_entries_than_allowed_after_members_were_queued_is_413(tmp_path):
    receiver, _, _, slices = _streaming(tmp_path, zip_of(_pngs(5)), max_files=4)
    with pytest.raises(UploadRefused) as refused:
        for piece in slices:
            receiver.feed(piece)
    assert (refused.value.status_code, refused.value.code) == (413, "zip_too_large")


def test_local_headers_that_contradict_the_directory_yield_to_it(tmp_path):
    members = _pngs(3)
    archive = bytearray(zip_of(members))
    archive[30:32] = b"zz"  # the first member's name, in its local header only
    receiver, storage = _receive(tmp_path, bytes(archive))
    # Read from the directory alone, as before streaming: zipfile refuses the odd member.
    assert [(r.filename, r.code) for r in receiver.rejected] == [
        ("pack.zip/00.png", "corrupt_zip_member")
    ]
    assert _stored(receiver, storage) == {f"pack.zip/{n}": members[n] for n in ("01.png", "02.png")}
    assert len([path for path in tmp_path.rglob("*") if path.is_file()]) == 2  # none left over


def test_stored_members_with_data_descriptors_are_read_from_the_directory(tmp_path):
    members = _pngs(3)  # written to a pipe: no sizes in the local headers, nowhere to stop
    receiver, storage = _receive(tmp_path, _archive(members, zipfile.ZIP_STORED, pipe=True))
    assert _stored(receiver, storage) == {f"pack.zip/{n}": d for n, d in members.items()}
    assert receiver.rejected == []


def test_members_after_a_very_long_name_are_read_from_the_directory(tmp_path):
    members = _pngs(3)
    long_name = "y" * 2000 + ".png"
    archive = zip_of({"00.png": members["00.png"], long_name: members["01.png"],
                      "02.png": members["02.png"]})  # fmt: skip
    receiver, storage = _receive(tmp_path, archive)
    stored = _stored(receiver, storage)
    assert [d["position"] for d in receiver.pending] == [0, 1, 2] and receiver.rejected == []
    assert stored["pack.zip/00.png"] == members["00.png"]
    assert stored["pack.zip/02.png"] == members["02.png"]
    cut = next(name for name in stored if name.startswith("pack.zip/yyy"))
    assert len(cut) == 255 and stored[cut] == members["01.png"]
