"""The query-embedding seam: the embedder service over RPC, with a small LRU of query vectors."""

from __future__ import annotations

from array import array
from collections import OrderedDict
from typing import Protocol

from faststream.rabbit import RabbitBroker

from vectrion_common.contracts import EmbedRequest, EmbedResponse
from vectrion_common.messaging.rpc import RpcFailed, call
from vectrion_common.messaging.topology import Topology
from vectrion_query.errors import EmbedderUnavailable
from vectrion_query.settings import QuerySettings


class QueryEmbedder(Protocol):
    async def embed(self, text: str) -> list[float]: ...


class VectorCache:
    """Least-recently-used cache of query vectors (repeated questions skip the RPC).

    Entries are packed float32 (1.5 KB for 384 dimensions instead of ~12 KB as a list of
    Python floats); a hit returns a fresh list.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, array[float]] = OrderedDict()

    def get(self, key: str) -> list[float] | None:
        vector = self._items.get(key)
        if vector is None:
            return None
        self._items.move_to_end(key)
        return vector.tolist()

    def put(self, key: str, vector: list[float]) -> None:
        if self._capacity <= 0:
            return
        self._items[key] = array("f", vector)
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class RpcQueryEmbedder:
    def __init__(
        self, broker: RabbitBroker, topology: Topology, *, timeout: float, dimension: int, cache_size: int
    ) -> None:
        self._broker = broker
        self._topology = topology
        self._timeout = timeout
        self._dimension = dimension
        self.cache = VectorCache(cache_size)

    async def embed(self, text: str) -> list[float]:
        key = " ".join(text.split())
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        try:
            reply = await call(
                self._broker, self._topology, "embed", EmbedRequest(texts=[key]), EmbedResponse, self._timeout
            )
        except RpcFailed as exc:
            raise EmbedderUnavailable(str(exc)) from exc
        if len(reply.vectors) != 1 or reply.dimension != self._dimension or len(reply.vectors[0]) != self._dimension:
            raise EmbedderUnavailable(
                f"embedder answered dimension {reply.dimension}, the index expects {self._dimension}"
            )
        vector = reply.vectors[0]
        self.cache.put(key, vector)
        return vector


def make_query_embedder(settings: QuerySettings, broker: RabbitBroker, topology: Topology) -> QueryEmbedder:
    match settings.query_embedder:
        case "rpc":
            return RpcQueryEmbedder(
                broker,
                topology,
                timeout=settings.embed_timeout_seconds,
                dimension=settings.embedding_dimension,
                cache_size=settings.query_vector_cache_size,
            )
