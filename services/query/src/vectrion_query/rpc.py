"""Request/reply to sibling services over RabbitMQ (their own high-priority RPC queues)."""

from __future__ import annotations

from typing import TypeVar

from faststream.rabbit import RabbitBroker
from pydantic import BaseModel, ValidationError

from vectrion_common.logs import get_logger
from vectrion_common.messaging.topology import Topology

log = get_logger(__name__)

R = TypeVar("R", bound=BaseModel)


class RpcFailed(Exception):
    """The peer did not answer in time, could not be reached, or answered nonsense."""


async def call(
    broker: RabbitBroker, topology: Topology, name: str, request: BaseModel, reply: type[R], wait_seconds: float
) -> R:
    try:
        response = await broker.request(
            request.model_dump(mode="json"), queue=topology.rpc_queue(name), timeout=wait_seconds
        )
        body = await response.decode()
        return reply.model_validate(body)
    except TimeoutError as exc:
        log.warning("rpc.timeout", peer=name, timeout_s=wait_seconds)
        raise RpcFailed(f"{name} did not answer within {wait_seconds:g}s") from exc
    except ValidationError as exc:
        log.warning("rpc.bad_reply", peer=name)
        raise RpcFailed(f"{name} answered with an invalid reply") from exc
    except Exception as exc:  # broker down, unroutable request, closed channel: the peer is unavailable
        log.warning("rpc.failed", peer=name, error=type(exc).__name__)
        raise RpcFailed(f"{name} could not be reached: {type(exc).__name__}") from exc
