"""Shared test fixtures. Real data from ../shared/data is read in place, never copied;
tests that need it skip with a reason when it is absent."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CMOSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_path(*parts: str) -> Path:
    """Path inside ../shared/data; skips the calling test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (set CMOSYNTH_SHARED_DATA)")
    return path


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV a stage wrote."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: Iterable[dict], columns: Iterable[str]) -> Path:
    """A CSV as a reviewer or an earlier stage would leave it (columns not listed are
    dropped from the rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found: {SHARED_DATA} (set CMOSYNTH_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _no_real_ncbi(request, monkeypatch):
    """No test may reach NCBI: point the client at an address that refuses connections
    unless a test starts the local E-utilities server and sets NCBI_EUTILS_URL itself.
    Tests marked `network` (opt-in: -m network) talk to the real service."""
    if request.node.get_closest_marker("network"):
        monkeypatch.delenv("NCBI_EUTILS_URL", raising=False)
        return
    monkeypatch.setenv("NCBI_EUTILS_URL", "http://127.0.0.1:9/entrez/eutils/")
    monkeypatch.delenv("NCBI_API_KEY", raising=False)


def pytest_collection_modifyitems(config, items):
    """Tests that talk to the real NCBI run only when asked for (`pytest -m network`), as
    Biopython's online tests do."""
    if "network" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="talks to the real NCBI service: run `pytest -m network` "
                                   "on a machine with internet access")
    for item in items:
        if item.get_closest_marker("network"):
            item.add_marker(skip)
