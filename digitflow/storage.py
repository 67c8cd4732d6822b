"""Object storage for uploaded documents, behind one small interface.

`LocalStorage` keeps objects as files in a directory (the embedded default); `AzureBlobStorage`
keeps them as blobs in one container. Keys are relative paths such as `jobs/<job id>/000042`.
Images travel API -> storage -> worker; the queue only ever carries ids.
"""

import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Protocol

from digitflow.settings import PlatformSettings

CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """Base class for storage failures."""


class ObjectNotFound(StorageError, KeyError):
    """No object under that key: permanent for the document that points at it."""


class StorageUnavailable(StorageError):
    """The store could not be reached or failed: transient, worth a retry."""


class Storage(Protocol):
    def put(self, key: str, data: BinaryIO | bytes) -> None:
        """Store bytes (or a readable binary stream, copied in chunks) under `key`."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; ObjectNotFound if there are none."""

    def get_many(self, keys: Iterable[str]) -> list[bytes | ObjectNotFound]:
        """Each key's bytes, or the ObjectNotFound for a missing one, in order."""

    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix` (a job's folder, `jobs/<id>/`); how many."""

    def check(self) -> None:
        """Raise StorageUnavailable unless the store answers (for readiness probes)."""


def _validate_key(key: str) -> str:
    if not key or key.startswith("/") or "\\" in key or ".." in key.split("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._prefix = str(self.root) + os.sep
        self._made_dirs: set[str] = set()

    def _path(self, key: str) -> str:
        # Plain strings, not pathlib: this runs once per document on the hot path.
        return self._prefix + _validate_key(key)

    def put(self, key: str, data: BinaryIO | bytes) -> None:
        path = self._path(key)
        parent = os.path.dirname(path)
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        # Written in place: a document's row is committed (and its task sent) only after put()
        # returns, so no reader ever sees a half-written object.
        try:
            with open(path, "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, CHUNK_SIZE)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as file:
                return file.read()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc}") from exc

    def get_many(self, keys: Iterable[str]) -> list[bytes | ObjectNotFound]:
        out: list[bytes | ObjectNotFound] = []
        for key in keys:
            try:
                out.append(self.get(key))
            except ObjectNotFound as exc:
                out.append(exc)
        return out

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete {key}: {exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        folder = self._path(prefix.rstrip("/"))
        removed = 0
        try:
            for _parent, _dirs, files in os.walk(folder):
                removed += len(files)
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete {prefix}: {exc}") from exc
        self._made_dirs.discard(folder)
        return removed

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"{self.root} is not writable")


class AzureBlobStorage:
    # Blob reads are network round trips: a batch reads its documents concurrently.
    READ_CONCURRENCY = 16

    def __init__(
        self, connection_string: str, container: str, retries: int = 3, create: bool = True
    ):
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        # The SDK's default backoff (15 s, then 18 s, 24 s...) would stall an upload for a
        # minute and more; retry briefly here, and let the worker's task retries do the rest.
        service = BlobServiceClient.from_connection_string(
            connection_string,
            retry_policy=ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=retries),
            connection_timeout=10,
        )
        self._container = service.get_container_client(container)
        if not create:  # least privilege: the operator made the container
            return
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        except Exception as exc:  # noqa: BLE001 - any SDK/network error: the store is not usable
            raise StorageUnavailable(f"cannot open container {container!r}: {exc}") from exc

    def put(self, key: str, data: BinaryIO | bytes) -> None:
        from azure.core.exceptions import AzureError

        try:
            self._container.upload_blob(_validate_key(key), data, overwrite=True)
        except AzureError as exc:
            raise StorageUnavailable(f"cannot write {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            return self._container.download_blob(_validate_key(key)).readall()
        except ResourceNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except AzureError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc}") from exc

    def get_many(self, keys: Iterable[str]) -> list[bytes | ObjectNotFound]:
        def read(key: str) -> bytes | ObjectNotFound:
            try:
                return self.get(key)
            except ObjectNotFound as exc:
                return exc

        with ThreadPoolExecutor(self.READ_CONCURRENCY) as pool:
            return list(pool.map(read, keys))

    def delete(self, key: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            self._container.delete_blob(_validate_key(key))
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise StorageUnavailable(f"cannot delete {key}: {exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        from azure.core.exceptions import AzureError

        try:
            names = [b.name for b in self._container.list_blobs(_validate_key(prefix))]
            for start in range(0, len(names), 256):  # the batch API takes up to 256 blobs
                self._container.delete_blobs(*names[start : start + 256])
        except AzureError as exc:
            raise StorageUnavailable(f"cannot delete {prefix}: {exc}") from exc
        return len(names)

    def check(self) -> None:
        from azure.core.exceptions import AzureError

        try:
            self._container.get_container_properties()
        except AzureError as exc:
            raise StorageUnavailable(f"blob container unreachable: {exc}") from exc


def make_storage(settings: PlatformSettings) -> Storage:
    if settings.storage_backend == "local":
        return LocalStorage(settings.resolved_storage_dir)
    if settings.storage_backend == "azure":
        if not settings.azure_storage_connection_string:
            raise ValueError("STORAGE_BACKEND=azure needs AZURE_STORAGE_CONNECTION_STRING")
        return AzureBlobStorage(
            settings.azure_storage_connection_string, settings.azure_storage_container
        )
    raise ValueError(f"unknown STORAGE_BACKEND {settings.storage_backend!r}: use local or azure")
