"""Where the API and the workers get their model: MODEL_SOURCE (else MODEL_DIR) is one of

    /app/models/default                    a folder (model files + model_card.json)
    https://ACCT.blob.core.windows.net/models/cnn/7/
                                           a Blob folder (a SAS in the URL, or the account of
                                           AZURE_STORAGE_CONNECTION_STRING)
    azureml:digitflow-cnn:3                a model registered in Azure ML (needs the training
                                           extra and the AZURE_* workspace variables)

Anything not local is downloaded once into DATA_DIR/models/ and reused. Every model file the
card lists is checked against the card's sha256 before it is used, so a truncated download, a
wrong version or a tampered file stops the process instead of serving wrong answers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from recognition.card import CARD_FILENAME, KERAS_FILENAME, TFLITE_FILENAME, ModelCard

logger = logging.getLogger("digitflow.model_source")

MODEL_FILES = (TFLITE_FILENAME, KERAS_FILENAME)
_AZUREML = re.compile(r"^azureml:(?P<name>[A-Za-z0-9_.-]+):(?P<version>[A-Za-z0-9_.-]+)$")


class ModelSourceError(RuntimeError):
    """The model could not be fetched, or what was fetched is not what its card describes."""


@dataclass(frozen=True)
class BlobFolder:
    account_url: str  # https://account.blob.core.windows.net or http://host:10000/account
    container: str
    prefix: str  # "" or ending in "/"
    sas: str | None


def parse_blob_url(url: str) -> BlobFolder:
    """Split a Blob folder URL; Azurite-style URLs carry the account as the first path part."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ModelSourceError(f"not a Blob URL: {url!r}")
    segments = [s for s in parts.path.split("/") if s]
    account = [] if parts.netloc.endswith(".core.windows.net") else segments[:1]
    rest = segments[len(account) :]
    if not rest:
        raise ModelSourceError(f"no container in Blob URL {url!r}")
    base = f"{parts.scheme}://{parts.netloc}" + "".join(f"/{a}" for a in account)
    prefix = "/".join(rest[1:])
    return BlobFolder(base, rest[0], prefix + "/" if prefix else "", parts.query or None)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify(folder: Path) -> ModelCard:
    """The folder's card, after checking every model file present against the card's sha256."""
    folder = Path(folder)
    try:
        card = ModelCard.load(folder)
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"{folder}: no readable {CARD_FILENAME}: {exc}") from exc
    present = [name for name in MODEL_FILES if (folder / name).exists()]
    if not present:
        raise ModelSourceError(f"{folder}: none of {', '.join(MODEL_FILES)}")
    for name in present:
        expected = card.sha256.get(name)
        if expected is None:
            raise ModelSourceError(f"{folder}: the card lists no sha256 for {name}")
        actual = sha256_of(folder / name)
        if actual != expected:
            raise ModelSourceError(
                f"{folder / name}: sha256 {actual} does not match the card's {expected}"
            )
    return card


def _cache_dir(data_dir: Path, source: str) -> Path:
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", source.split("?", 1)[0])[-48:].strip("-")
    return Path(data_dir) / "models" / f"{label}-{key}"


def _fetch_blob(folder: BlobFolder, out: Path, connection_string: str | None) -> None:
    from azure.core.exceptions import AzureError
    from azure.storage.blob import BlobServiceClient, ContainerClient

    if folder.sas:
        client = ContainerClient(folder.account_url, folder.container, credential=folder.sas)
    elif connection_string:
        service = BlobServiceClient.from_connection_string(connection_string)
        client = service.get_container_client(folder.container)
    else:
        client = ContainerClient(folder.account_url, folder.container)  # public container
    try:
        card = client.download_blob(folder.prefix + CARD_FILENAME).readall()
        (out / CARD_FILENAME).write_bytes(card)
        listed = ModelCard.model_validate_json(card).sha256
        for name in (n for n in MODEL_FILES if n in listed):
            with open(out / name, "wb") as f:
                client.download_blob(folder.prefix + name).readinto(f)
    except AzureError as exc:
        raise ModelSourceError(f"cannot download the model from Blob: {exc}") from exc


def _fetch_azureml(name: str, version: str, out: Path) -> None:
    """Download a registered model version with the Azure ML SDK (training extra)."""
    try:
        from training.azureml import download_model, ml_client
    except ImportError as exc:
        raise ModelSourceError(
            f"azureml:{name}:{version} needs the Azure ML SDK (pip install '.[training]'), or "
            "download it at build time: python -m training.azureml download"
        ) from exc
    download_model(ml_client(), name, version, out)


def _fetch(source: str, out: Path, connection_string: str | None) -> None:
    azureml = _AZUREML.match(source)
    if azureml:
        _fetch_azureml(azureml["name"], azureml["version"], out)
    else:
        _fetch_blob(parse_blob_url(source), out, connection_string)


def is_remote(source: str) -> bool:
    return bool(_AZUREML.match(source)) or source.startswith(("http://", "https://"))


def resolve(source: str, data_dir: Path, connection_string: str | None = None) -> Path:
    """A verified local model folder for `source`, downloading it first if it is remote."""
    if not is_remote(source):
        if source.startswith("azureml:"):
            raise ModelSourceError(f"expected azureml:NAME:VERSION, got {source!r}")
        verify(Path(source))
        return Path(source)
    target = _cache_dir(data_dir, source)
    if target.is_dir():
        try:
            verify(target)
            return target
        except ModelSourceError as exc:  # a damaged cache: fetch it again
            logger.warning("cached model at %s is unusable: %s", target, exc)
            shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        _fetch(source, staging, connection_string)
        card = verify(staging)
        try:
            os.replace(staging, target)  # atomic: another process sees all of it or nothing
        except OSError:
            if not target.is_dir():
                raise  # not a lost race with another process: a real error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("model %s from %s verified into %s", card.version, source, target)
    return target


def model_dir(settings) -> Path:
    """The model folder the platform's settings point at (MODEL_SOURCE, else MODEL_DIR)."""
    source = settings.model_source or str(settings.model_dir)
    return resolve(source, settings.data_dir, settings.azure_storage_connection_string)


def load_recognizer(settings, **options):
    """The recognition core on the verified model of `settings` (API lifespan, worker start)."""
    from recognition import Recognizer

    return Recognizer(model_dir(settings), **options)
