"""The streaming upload receiver on its own: a multipart body fed in arbitrary slices."""

import uuid

import httpx
import pytest

from api.jobs.upload import Limits, UploadReceiver, UploadRefused
from digitflow.storage import LocalStorage
from tests.jobs.support import scans, zip_of

LIMITS = Limits(
    max_files=10, max_image_bytes=100_000, max_image_pixels=10**6, max_total_bytes=10**7
)


def multipart(files, data=None) -> tuple[bytes, bytes]:
    request = httpx.Request("POST", "http://x/jobs", files=files, data=data)
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    return request.read(), boundary


def receive(body: bytes, boundary: bytes, storage, slice_size: int, flush_every: int = 100):
    flushed: list[list[dict]] = []
    receiver = UploadReceiver(
        boundary, uuid.uuid4(), storage, LIMITS, flushed.append, lambda: flush_every
    )
    for start in range(0, len(body), slice_size):
        receiver.feed(body[start : start + slice_size])
    receiver.feed(b"", final=True)
    return receiver, flushed


@pytest.mark.parametrize("slice_size", [1, 7, 4096, 10**7])
def test_any_slicing_gives_the_same_documents(tmp_path, slice_size):
    items = scans(3)
    archive = zip_of({"in/a.png": items[1][1], "in/b.txt": b"text"})
    files = [("files", (items[0][0], items[0][1])), ("files", ("pack.zip", archive)),
             ("files", ("empty.png", b""))]  # fmt: skip
    body, boundary = multipart(files, data={"layout": "field"})
    storage = LocalStorage(tmp_path)
    receiver, flushed = receive(body, boundary, storage, slice_size)
    assert receiver.fields == {"layout": "field"}
    assert [d["filename"] for d in receiver.pending] == [items[0][0], "pack.zip/in/a.png"]
    assert [d["position"] for d in receiver.pending] == [0, 1]
    assert {(r.filename, r.code) for r in receiver.rejected} == {
        ("pack.zip/in/b.txt", "undecodable_image"),
        ("empty.png", "empty_file"),
    }
    assert flushed == []
    assert storage.get(receiver.pending[1]["storage_key"]) == items[1][1]


def test_documents_are_handed_over_every_flush_every(tmp_path):
    body, boundary = multipart([("files", (n, d)) for n, d, _ in scans(5)])
    receiver, flushed = receive(body, boundary, LocalStorage(tmp_path), 1000, flush_every=2)
    assert [len(batch) for batch in flushed] == [2, 2] and len(receiver.pending) == 1


def test_a_truncated_body_is_refused_and_discard_removes_what_was_stored(tmp_path):
    body, boundary = multipart([("files", (n, d)) for n, d, _ in scans(3)])
    storage = LocalStorage(tmp_path)
    receiver = UploadReceiver(boundary, uuid.uuid4(), storage, LIMITS, lambda _: None, lambda: 100)
    receiver.feed(body[: len(body) - 10])
    with pytest.raises(UploadRefused) as refused:
        receiver.feed(b"", final=True)
    assert (refused.value.status_code, refused.value.code) == (400, "malformed_multipart")
    assert len(receiver.stored_keys) == 2  # the third part never ended
    receiver.discard()
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_too_many_files_is_refused_whole(tmp_path):
    body, boundary = multipart([("files", (n, d)) for n, d, _ in scans(11)])
    with pytest.raises(UploadRefused) as refused:
        receive(body, boundary, LocalStorage(tmp_path), 65536)
    assert (refused.value.status_code, refused.value.code) == (413, "too_many_files")
