"""DLQ admin (ingest owns it): list, inspect, replay and purge parked messages of every consumer.

The messages stay in RabbitMQ (:class:`vectrion_common.messaging.dead_letters.DeadLetterStore`);
what ingest adds is the document side of a replay: a ``failed`` document of the
message's generation goes back to ``processing`` (attempts + 1) *before* the
message is sent again, so the events the replay causes can carry it forward.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.messaging.dead_letters import DeadLetter, DeadLetterStore
from vectrion_ingest.errors import DocumentNotFound
from vectrion_ingest.lifecycle import resumed_status
from vectrion_ingest.repository import DocumentRepository
from vectrion_ingest.status import DocumentStatus

log = get_logger(__name__)


class DeadLetterNotFound(DocumentNotFound):
    type_ = "dead-letter-not-found"


class DeadLetterAdmin:
    def __init__(self, store: DeadLetterStore, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._store = store
        self._sessions = sessions

    async def list_all(self, queue: str | None = None) -> list[DeadLetter]:
        return await self._store.list_messages(queue)

    async def inspect(self, message_id: str, queue: str | None = None) -> list[DeadLetter]:
        return self._found(message_id, await self._store.find(message_id, queue))

    async def replay(self, message_id: str, queue: str | None = None) -> list[DeadLetter]:
        for letter in self._found(message_id, await self._store.find(message_id, queue)):
            await self._resume_document(letter)
        replayed = self._found(message_id, await self._store.replay(message_id, queue))
        log.info("dlq.replayed", message_id=message_id, queues=[r.queue for r in replayed])
        return replayed

    async def purge(self, message_id: str, queue: str | None = None) -> list[DeadLetter]:
        purged = self._found(message_id, await self._store.purge(message_id, queue))
        log.info("dlq.purged", message_id=message_id, queues=[p.queue for p in purged])
        return purged

    async def _resume_document(self, letter: DeadLetter) -> None:
        if letter.document_id is None:
            return
        try:
            document_id = uuid.UUID(letter.document_id)
        except ValueError:
            return
        async with unit_of_work(self._sessions) as session:
            repository = DocumentRepository(session)
            document = await repository.lock(document_id)
            if document is None:
                return
            status = resumed_status(DocumentStatus(document.status), document.generation, letter.generation)
            if status is None:
                return
            await repository.update(document_id, status=status.value, error=None, attempts=document.attempts + 1)
        log.info("dlq.document_resumed", document_id=str(document_id), status=status.value)

    @staticmethod
    def _found(message_id: str, letters: list[DeadLetter]) -> list[DeadLetter]:
        if not letters:
            raise DeadLetterNotFound(f"no dead-lettered message {message_id}")
        return letters
