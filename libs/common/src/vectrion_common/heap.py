"""Give heap memory freed by bulk work back to the OS.

Bulk work leaves most of its transient memory with the process unless the heap
is trimmed. In the query service, two bulk builds: opening a local Qdrant
collection (it unpickles every point and holds all vectors as Python float lists
before packing them into numpy) and building a tenant's BM25 index (millions of
token strings); measured at SciFact size (5,183 chunks), ~30 MB after the Qdrant
load and ~24 MB after a BM25 build come back with one ``malloc_trim`` (glibc only;
elsewhere this is a no-op). In the embedder, each ingestion encode (token ids,
activations and float lists of up to hundreds of texts).
"""

from __future__ import annotations

import ctypes
import gc


def release_freed_heap(*, collect: bool = True) -> None:
    """``collect``: run the garbage collector first (reference cycles hold memory too)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    if collect:
        gc.collect()
    libc.malloc_trim(0)
