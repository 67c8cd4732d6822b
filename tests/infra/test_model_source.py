"""Model delivery: the platform loads its model from a folder, a Blob folder URL (real Azurite)
or an Azure ML reference (tests/training/test_azureml.py), and refuses any model whose files do
not match its card's sha256 — at load, so /ready says why instead of serving wrong answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from digitflow import model_source
from digitflow.model_source import ModelSourceError
from recognition.card import ModelCard
from recognition.inference import Recognizer

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "default"
FILES = ("model_card.json", "model.tflite", "model.keras")


@pytest.fixture()
def tampered(tmp_path) -> Path:
    folder = tmp_path / "tampered"
    shutil.copytree(SHIPPED, folder)
    data = bytearray((folder / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit: still a loadable model, no longer the carded one
    (folder / "model.tflite").write_bytes(bytes(data))
    return folder


def upload(azurite, container: str, prefix: str, folder: Path) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.get_container_client(container)
    if not client.exists():
        client.create_container()
    for name in FILES:
        client.upload_blob(prefix + name, (folder / name).read_bytes(), overwrite=True)


def test_a_folder_is_verified_and_used_in_place():
    assert model_source.resolve(str(SHIPPED), Path("/nonexistent")) == SHIPPED
    assert model_source.verify(SHIPPED).version == ModelCard.load(SHIPPED).version


def test_a_tampered_folder_is_refused(tampered):
    with pytest.raises(ModelSourceError, match="sha256 .* does not match the card"):
        model_source.resolve(str(tampered), tampered.parent)


@pytest.mark.parametrize(
    ("url", "account_url", "container", "prefix"),
    [
        ("https://acct.blob.core.windows.net/models/cnn/7/", "https://acct.blob.core.windows.net",
         "models", "cnn/7/"),
        ("http://127.0.0.1:10000/devstoreaccount1/models", "http://127.0.0.1:10000/devstoreaccount1",
         "models", ""),
    ],
)  # fmt: skip
def test_blob_urls_are_split_into_account_container_and_prefix(url, account_url, container, prefix):
    folder = model_source.parse_blob_url(url)
    assert (folder.account_url, folder.container, folder.prefix) == (account_url, container, prefix)


@pytest.mark.parametrize("source", ["ftp://x/y", "azureml:digitflow-cnn", "https://host"])
def test_malformed_sources_are_clear_errors(source, tmp_path):
    with pytest.raises(ModelSourceError):
        model_source.resolve(source, tmp_path)


def test_a_blob_folder_is_downloaded_once_verified_and_served(azurite, tmp_path):
    upload(azurite, "models", "digitflow-cnn/7/", SHIPPED)
    url = f"{azurite.blob_endpoint}/models/digitflow-cnn/7/"
    folder = model_source.resolve(url, tmp_path, azurite.connection_string)
    assert folder.is_relative_to(tmp_path / "models")
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert Recognizer(folder).version == ModelCard.load(SHIPPED).version
    # Cached: a second process start needs no Blob access (the container is gone by then).
    BlobServiceClient.from_connection_string(azurite.connection_string).delete_container("models")
    assert model_source.resolve(url, tmp_path, azurite.connection_string) == folder


def test_a_sas_url_needs_no_connection_string(azurite, tmp_path):
    upload(azurite, "sas-models", "", SHIPPED)
    sas = generate_container_sas(
        azurite.account, "sas-models", account_key=azurite.key,
        permission=ContainerSasPermissions(read=True), expiry="2099-01-01T00:00:00Z",
    )  # fmt: skip
    folder = model_source.resolve(f"{azurite.blob_endpoint}/sas-models?{sas}", tmp_path)
    assert model_source.verify(folder).version == ModelCard.load(SHIPPED).version


def test_a_tampered_blob_model_is_refused_and_not_cached(azurite, tampered, tmp_path):
    upload(azurite, "bad-models", "x/", tampered)
    url = f"{azurite.blob_endpoint}/bad-models/x/"
    with pytest.raises(ModelSourceError, match="does not match"):
        model_source.resolve(url, tmp_path, azurite.connection_string)
    assert not [p for p in (tmp_path / "models").iterdir() if not p.name.startswith(".")]


def test_the_api_serves_a_blob_model_and_reports_a_bad_one_on_ready(azurite, tampered, tmp_path):
    upload(azurite, "api-models", "good/", SHIPPED)
    upload(azurite, "api-models", "bad/", tampered)
    common = {"data_dir": tmp_path, "azure_storage_connection_string": azurite.connection_string}
    good = Settings(model_source=f"{azurite.blob_endpoint}/api-models/good/", **common)
    with TestClient(create_app(good)) as client:
        assert client.get("/model-info").json()["version"] == ModelCard.load(SHIPPED).version
    bad = Settings(model_source=f"{azurite.blob_endpoint}/api-models/bad/", **common)
    with TestClient(create_app(bad)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "ModelSourceError" in ready.text
