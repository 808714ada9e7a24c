"""The benchmark's documents: the rows of the shared manifest that must end with text."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tests.harness import SHARED_DATA

PDF_DIR = SHARED_DATA / "pdfs"
MANIFEST = PDF_DIR / "manifest.csv"


@dataclass(frozen=True, slots=True)
class Pdf:
    path: Path
    pages: int

    @property
    def name(self) -> str:
        return self.path.name


def text_pdfs(limit: int | None = None) -> list[Pdf]:
    with MANIFEST.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["expect"] == "text"]
    pdfs = [Pdf(PDF_DIR / r["file"], int(r["pages"])) for r in rows]
    return pdfs[:limit] if limit else pdfs
