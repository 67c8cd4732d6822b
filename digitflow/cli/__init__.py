"""The `digitflow` command: read handwritten digits, run the platform, manage it.

Each subcommand lives in a module of its own with a `register(commands)`.

    digitflow recognize PATH...   print each image's digits, confidence and review flag
    digitflow migrate             apply database migrations (alembic upgrade head)
    digitflow run                 migrate, then run the API and a worker until Ctrl-C
    digitflow serve               the API alone, one process per core (the images run this)
    digitflow keys create|list|revoke   API keys (tenant, role), stored hashed
"""

import argparse
from importlib.metadata import PackageNotFoundError, version

from digitflow.cli import keys, migrate, recognize, run, serve
from digitflow.settings import PlatformSettings

SUBCOMMANDS = [recognize, migrate, run, serve, keys]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="digitflow", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"digitflow {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(commands)
    args = parser.parse_args(argv)
    return args.handler(args, PlatformSettings())


def _version() -> str:
    try:
        return version("digitflow")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
