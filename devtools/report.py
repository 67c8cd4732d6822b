"""Record benchmark figures in docs/benchmarks.md, one section per benchmark, with the machine."""

import os
import platform
import re
from datetime import date
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures printed by the scripts in `benchmarks/`; each section is rewritten by its script.\n"
)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {python}, {date.today()}"


def write_section(
    name: str, title: str, body: str, document: Path = BENCHMARKS_MD, header: str = HEADER
) -> None:
    """Replace (or append) the section `name` of docs/benchmarks.md (or of `document`)."""
    text = document.read_text() if document.exists() else header
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n## {title}\n\nMachine: {machine()}\n\n{body.strip()}\n{end}"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.DOTALL)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{block}\n"
    )
    document.parent.mkdir(exist_ok=True)
    document.write_text(text)


def publish(name: str, title: str, body: str, write: bool = True) -> int:
    """A benchmark's last step: print its section and (unless `write` is off) put it in
    docs/benchmarks.md; the exit status."""
    print(body)
    if write:
        write_section(name, title, body)
    return 0
