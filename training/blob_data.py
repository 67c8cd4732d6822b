"""Move the MNIST folder to and from Azure Blob Storage, where the Azure ML pipeline reads it.

    python -m training.blob_data upload --container mnist --prefix mnist/ [--data DIR]
    python -m training.blob_data download --container mnist --prefix mnist/ --out DIR

The connection string comes from --connection-string or $AZURE_STORAGE_CONNECTION_STRING (an
Azure ML datastore pointing at the same container then serves the folder as a uri_folder input).
"""

import argparse
import os
import sys
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from training.data import default_data_dir

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"


def _prefix(prefix: str) -> str:
    return prefix.strip("/") + "/" if prefix.strip("/") else ""


def upload_folder(
    connection_string: str, container: str, folder: Path, prefix: str = "mnist/"
) -> list[str]:
    """Upload every file directly in `folder` to `container/prefix`; return the blob names."""
    service = BlobServiceClient.from_connection_string(connection_string)
    client = service.get_container_client(container)
    try:
        client.create_container()
    except ResourceExistsError:
        pass
    names = []
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            name = _prefix(prefix) + path.name
            with open(path, "rb") as f:
                client.upload_blob(name, f, overwrite=True)
            names.append(name)
    return names


def download_folder(connection_string: str, container: str, prefix: str, out: Path) -> list[Path]:
    """Download every blob under `container/prefix` into `out` (flat); return the local paths."""
    service = BlobServiceClient.from_connection_string(connection_string)
    client = service.get_container_client(container)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for blob in client.list_blobs(name_starts_with=_prefix(prefix)):
        path = out / Path(blob.name).name
        with open(path, "wb") as f:
            client.download_blob(blob.name).readinto(f)
        paths.append(path)
    if not paths:
        raise FileNotFoundError(f"no blobs under {container}/{_prefix(prefix)}")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("action", choices=("upload", "download"))
    parser.add_argument("--connection-string", default=os.environ.get(CONNECTION_STRING_ENV))
    parser.add_argument("--container", default="mnist")
    parser.add_argument("--prefix", default="mnist/")
    parser.add_argument(
        "--data", type=Path, help="folder to upload (default: the local MNIST folder)"
    )
    parser.add_argument("--out", type=Path, help="folder to download into")
    args = parser.parse_args(argv)
    if not args.connection_string:
        parser.error(f"give --connection-string or set ${CONNECTION_STRING_ENV}")

    if args.action == "upload":
        names = upload_folder(
            args.connection_string, args.container, args.data or default_data_dir(), args.prefix
        )
        print(f"uploaded {len(names)} files to {args.container}/{_prefix(args.prefix)}")
    else:
        if not args.out:
            parser.error("download needs --out")
        paths = download_folder(args.connection_string, args.container, args.prefix, args.out)
        print(f"downloaded {len(paths)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
