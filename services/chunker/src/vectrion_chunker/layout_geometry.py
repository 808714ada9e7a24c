"""pdfminer's bounding box of a transformed rectangle, computed without its helper calls.

pdfminer builds one ``LTChar`` per glyph, and each one maps its glyph box through the text
matrix with ``pdfminer.utils.apply_matrix_rect``: four ``apply_matrix_pt`` calls, four tuples
and four ``min``/``max`` calls over four values. On the 27 text PDFs of the ingestion benchmark
(about 1.1 million glyphs) that was about a tenth of extraction's CPU. :func:`apply_matrix_rect`
returns the same floats, bit for bit: every corner is the same expression in the same order
(``a * x + c * y + e``), and each extreme is folded the way ``min``/``max`` fold (keep the first
value unless a later one compares lower, resp. higher), which keeps their answer for ties between
0.0 and -0.0 and for NaN.
"""

from __future__ import annotations

from pdfminer.utils import Matrix, Rect


def install() -> None:
    """Use :func:`apply_matrix_rect` where ``LTChar`` looks it up (once per process)."""
    import pdfminer.layout

    pdfminer.layout.apply_matrix_rect = apply_matrix_rect  # type: ignore[attr-defined]


def apply_matrix_rect(m: Matrix, rect: Rect) -> Rect:
    """``pdfminer.utils.apply_matrix_rect``: the upright box around ``rect`` mapped through ``m``."""
    (a, b, c, d, e, f) = m
    (x0, y0, x1, y1) = rect
    left1, bottom1 = a * x0 + c * y0 + e, b * x0 + d * y0 + f
    right1, bottom2 = a * x1 + c * y0 + e, b * x1 + d * y0 + f
    right2, top1 = a * x1 + c * y1 + e, b * x1 + d * y1 + f
    left2, top2 = a * x0 + c * y1 + e, b * x0 + d * y1 + f
    # pdfminer: min(left1, left2, right1, right2), min(bottom1, bottom2, top1, top2), and max likewise
    low_x = high_x = left1
    low_y = high_y = bottom1
    for x in (left2, right1, right2):
        if x < low_x:
            low_x = x
        if x > high_x:
            high_x = x
    for y in (bottom2, top1, top2):
        if y < low_y:
            low_y = y
        if y > high_y:
            high_y = y
    return (low_x, low_y, high_x, high_y)
