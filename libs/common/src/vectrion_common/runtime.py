"""The messaging wiring every service's lifespan repeats, written once.

A service builds a :class:`ServiceRuntime` in its lifespan, subscribes its
handlers (each one retried and parked the same way, see
:mod:`vectrion_common.messaging.retry`), routes the RPC queues it answers
(``runtime.rpc``, see :mod:`vectrion_common.messaging.rpc`), adds its own
readiness checks, then ``async with runtime.running():`` connects the broker,
declares the topology, starts consuming, answering and the outbox relay;
leaving stops them in reverse order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from faststream.rabbit import RabbitBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vectrion_common.contracts import Event
from vectrion_common.db import make_engine, make_sessionmaker, ping
from vectrion_common.messaging.broker import make_broker
from vectrion_common.messaging.failures import publish_failures, stage_failures_in_outbox
from vectrion_common.messaging.outbox import OutboxRelay
from vectrion_common.messaging.retry import Consumers, E, FailureReporter, Handler, RetryPolicy
from vectrion_common.messaging.rpc import RpcServer
from vectrion_common.messaging.topology import Topology
from vectrion_common.settings import ServiceSettings

BROKER_PING_TIMEOUT_SECONDS = 2.0


class ServiceRuntime:
    """Broker, topology, retried consumers; with ``outbox`` also the engine, sessions and relay."""

    def __init__(
        self,
        app: FastAPI,
        settings: ServiceSettings,
        *,
        consumer: str,
        outbox: sa.Table | None = None,
        report_failure: FailureReporter | None = None,
    ) -> None:
        self.topology = Topology(settings.broker_namespace)
        self.broker: RabbitBroker = make_broker(settings, app.state.tracer_provider)
        self.rpc = RpcServer(self.broker, app.state.tracer_provider)
        self.engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self.relay: OutboxRelay | None = None
        if outbox is not None:
            self.engine = make_engine(settings.db_url(), settings.db_schema, settings.db_pool_size)
            self._sessions = make_sessionmaker(self.engine)
            self.relay = OutboxRelay(self._sessions, outbox, self.broker, self.topology)
            default_report = stage_failures_in_outbox(self._sessions, outbox, consumer, self.relay.wake)
        else:
            default_report = publish_failures(self.broker, self.topology, consumer)
        self.consumers = Consumers(
            self.broker,
            self.topology,
            consumer,
            RetryPolicy.from_settings(settings.retry),
            report_failure or default_report,
        )
        app.state.readiness_checks["broker"] = self._broker_ready
        if self.engine is not None:
            engine = self.engine
            app.state.readiness_checks["db"] = lambda: ping(engine)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("this runtime has no database (pass outbox=...)")
        return self._sessions

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    def subscribe(self, event: type[E], handler: Handler[E]) -> None:
        self.consumers.subscribe(event, handler)

    @property
    def events(self) -> list[type[Event]]:
        return self.consumers.events

    async def _broker_ready(self) -> None:
        if not await self.broker.ping(BROKER_PING_TIMEOUT_SECONDS):
            raise ConnectionError("RabbitMQ did not answer")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        try:
            await self.broker.connect()
            await self.consumers.declare()
            await self.broker.start()
            await self.rpc.start()
            if self.relay is not None:
                self.relay.start()
            yield
        finally:
            if self.relay is not None:
                await self.relay.stop()
            await self.rpc.stop()
            await self.broker.stop()
            if self.engine is not None:
                await self.engine.dispose()
