"""One contract, two backends: a local directory and Azure Blob (the Azurite emulator)."""

import io
import uuid

import pytest

from digitflow.settings import PlatformSettings
from digitflow.storage import (
    AzureBlobStorage,
    LocalStorage,
    ObjectNotFound,
    StorageUnavailable,
    make_storage,
)


@pytest.fixture(params=["local", "azure"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    azurite = request.getfixturevalue("azurite")
    return AzureBlobStorage(azurite.connection_string, f"test-{uuid.uuid4().hex[:12]}")


def test_put_bytes_then_get(storage):
    storage.put("jobs/a/000001", b"\x89PNG some bytes")
    assert storage.get("jobs/a/000001") == b"\x89PNG some bytes"


def test_put_stream_copies_it_whole(storage):
    data = bytes(range(256)) * 9000  # 2.3 MB: several chunks
    storage.put("jobs/a/big", io.BytesIO(data))
    assert storage.get("jobs/a/big") == data


def test_put_overwrites(storage):
    storage.put("k", b"first")
    storage.put("k", b"second")
    assert storage.get("k") == b"second"


def test_missing_key_is_object_not_found(storage):
    with pytest.raises(ObjectNotFound):
        storage.get("jobs/none/here")


def test_get_many_keeps_order_and_reports_missing(storage):
    storage.put("m/1", b"one")
    storage.put("m/3", b"three")
    got = storage.get_many(["m/3", "m/2", "m/1"])
    assert got[0] == b"three" and got[2] == b"one"
    assert isinstance(got[1], ObjectNotFound)


def test_delete_removes_and_is_idempotent(storage):
    storage.put("d/1", b"x")
    storage.delete("d/1")
    with pytest.raises(ObjectNotFound):
        storage.get("d/1")
    storage.delete("d/1")  # again: not an error


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../outside", "a/../../b", "a\\b"])
def test_unsafe_keys_are_refused(storage, key):
    with pytest.raises(ValueError):
        storage.put(key, b"x")


def test_check_passes_on_a_working_store(storage):
    storage.check()


def test_unreachable_azure_is_storage_unavailable():
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    with pytest.raises(StorageUnavailable):
        AzureBlobStorage(dead, "documents", retries=0)


@pytest.mark.parametrize("operation", ["get", "get_many", "put", "delete", "check"])
def test_azure_errors_while_working_are_storage_unavailable(operation):
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    storage = AzureBlobStorage(dead, "documents", retries=0, create=False)
    calls = {
        "get": lambda: storage.get("k"),
        "get_many": lambda: storage.get_many(["k"]),
        "put": lambda: storage.put("k", b"v"),
        "delete": lambda: storage.delete("k"),
        "check": storage.check,
    }
    with pytest.raises(StorageUnavailable):
        calls[operation]()


def test_make_storage_follows_settings(tmp_path, azurite):
    local = make_storage(PlatformSettings(storage_local_dir=tmp_path / "s"))
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "s"
    blob = make_storage(
        PlatformSettings(
            storage_backend="azure",
            azure_storage_connection_string=azurite.connection_string,
            azure_storage_container="made-by-settings",
        )
    )
    blob.put("x", b"y")
    assert blob.get("x") == b"y"
    with pytest.raises(ValueError, match="AZURE_STORAGE_CONNECTION_STRING"):
        make_storage(PlatformSettings(storage_backend="azure"))


def test_delete_prefix_removes_a_jobs_folder_only(storage):
    for key in ("jobs/a/000000", "jobs/a/000001", "jobs/ab/000000", "jobs/b/000000"):
        storage.put(key, b"x")
    assert storage.delete_prefix("jobs/a/") == 2
    assert storage.delete_prefix("jobs/a/") == 0  # again: nothing left, no error
    assert storage.get("jobs/ab/000000") == b"x" and storage.get("jobs/b/000000") == b"x"
    with pytest.raises(ObjectNotFound):
        storage.get("jobs/a/000001")


def test_delete_prefix_counts_nested_objects_and_the_folder_can_be_written_again(storage):
    for key in ("jobs/a/000000", "jobs/a/pages/000001", "jobs/a/pages/000002"):
        storage.put(key, b"x")
    assert storage.delete_prefix("jobs/a/") == 3
    storage.put("jobs/a/000000", b"again")  # a retry of the same job id writes afresh
    assert storage.get("jobs/a/000000") == b"again"


def test_a_local_delete_that_fails_says_which_key(tmp_path):
    storage = LocalStorage(tmp_path / "objects")
    storage.put("jobs/a/000000", b"x")
    with pytest.raises(StorageUnavailable, match=r"^cannot delete jobs/a: "):
        storage.delete("jobs/a")  # a folder, not an object
