from __future__ import annotations

import itertools
import math
import random

from pdfminer.utils import apply_matrix_rect as pdfminer_apply_matrix_rect

from vectrion_chunker.layout_geometry import apply_matrix_rect

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 12, -3, 1e-300, 1e300, math.inf, -math.inf, math.nan]


def _same(left: tuple[float, ...], right: tuple[float, ...]) -> bool:
    # repr tells -0.0 from 0.0 and matches nan with nan
    return [repr(v) for v in left] == [repr(v) for v in right]


def test_glyph_boxes_are_pdfminers_bit_for_bit() -> None:
    rng = random.Random(7)
    cases = []
    for _ in range(20000):
        matrix = tuple(rng.choice([rng.uniform(-50, 50), rng.randint(-3, 3), rng.choice(SPECIAL)]) for _ in range(6))
        rect = tuple(rng.choice([rng.uniform(-800, 800), rng.choice(SPECIAL)]) for _ in range(4))
        cases.append((matrix, rect))
    # rotations and mirrorings, where corners tie and zeros carry signs
    for a, b, c, d in itertools.product([0.0, -0.0, 1.0, -1.0], repeat=4):
        cases.append(((a, b, c, d, 0.0, -0.0), (0.0, -0.0, 5.5, 10)))
    for matrix, rect in cases:
        assert _same(apply_matrix_rect(matrix, rect), pdfminer_apply_matrix_rect(matrix, rect)), (matrix, rect)  # type: ignore[arg-type]
