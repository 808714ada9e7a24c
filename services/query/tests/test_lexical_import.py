"""bm25s is imported without numba (about 115 MB of RSS in the query service), and scores as before."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from vectrion_query.lexical import import_bm25s
bm25s = import_bm25s()
assert "numba" not in sys.modules, "numba was imported"
assert not bm25s.NUMBA_AVAILABLE
index = bm25s.BM25()
index.index([["quorum", "queue", "retry"], ["dead", "letter", "queue"], ["tax", "return"]], show_progress=False)
scores = index.get_scores(["queue", "retry"])
assert scores[0] > scores[1] > 0 and scores[2] == 0, scores
import numba  # still importable by anyone else afterwards
print("ok")
"""


def test_bm25s_comes_without_numba_and_numba_stays_importable() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
