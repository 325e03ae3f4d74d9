"""Alembic migrations of the gate-tracker schema, shipped inside the package."""

from __future__ import annotations

from pathlib import Path

VERSIONS_DIR = Path(__file__).parent / "versions"


def known_revisions() -> set[str]:
    """Every schema revision this gate-tracker knows, from the version files.

    Version files are named ``<revision>_<slug>.py``.
    """
    return {
        path.name.split("_", 1)[0]
        for path in VERSIONS_DIR.glob("*_*.py")
        if not path.name.startswith("_")
    }
