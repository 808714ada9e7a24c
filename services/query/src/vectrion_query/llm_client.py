"""An OpenAI-compatible chat-completions client that cannot take the query service down.

Works with OpenAI, vLLM, Ollama and LiteLLM (``POST {base_url}/chat/completions``).
Every call is bounded three ways:

- time: connect/read timeouts per attempt, and an overall :class:`Deadline` that
  no retry or backoff sleep may cross;
- load: a concurrency cap (a semaphore; waiting for a slot also counts against
  the deadline) and a circuit breaker that stops calling a provider that keeps
  failing, then lets one trial call through after ``reset_seconds``;
- failure: 429/5xx/timeouts/transport errors are retried with exponential
  backoff + full jitter, honouring ``Retry-After`` (capped by the deadline);
  other 4xx and malformed answers are not retried.

A stream is retried only before its first token: once text has been handed
out, a cut stream is reported as :class:`LLMStreamBroken` and the caller decides.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vectrion_common.logs import get_logger

log = get_logger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LLMError(Exception):
    """The provider gave no usable answer (after retries, within the deadline)."""

    reason = "error"


class LLMUnavailable(LLMError):
    """The circuit is open, no concurrency slot was free in time, or the deadline passed."""

    reason = "unavailable"


class LLMBadResponse(LLMError):
    """The provider answered something that is not a chat completion."""

    reason = "bad_response"


class LLMStreamBroken(LLMError):
    """The stream ended before ``[DONE]``/a finish reason, after text was already handed out."""

    reason = "stream_broken"


class _Retryable(LLMError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Deadline:
    """An absolute point in (monotonic) time that a whole request must finish by."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class CircuitBreaker:
    """closed -> (``failures`` in a row) -> open -> (``reset_seconds``) -> half-open: one trial call."""

    def __init__(self, failures: int, reset_seconds: float) -> None:
        self._threshold = max(1, failures)
        self._reset = reset_seconds
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if time.monotonic() - self._opened_at >= self._reset else "open"

    def allow(self) -> bool:
        match self.state:
            case "closed":
                return True
            case "half_open" if not self._trial_running:
                self._trial_running = True
                return True
            case _:
                return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        self._failures += 1
        self._trial_running = False
        if self._opened_at is not None or self._failures >= self._threshold:
            if self._opened_at is None:
                log.warning("llm.circuit_opened", failures=self._failures)
            self._opened_at = time.monotonic()


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class StreamDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Full jitter (uniform 0..base*2^attempt, capped); a provider's Retry-After is a floor."""
    jittered = random.uniform(0, min(cap, base * (2**attempt)))  # jitter, not crypto
    return max(jittered, retry_after or 0.0)


def _usage(body: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else None, completion if isinstance(completion, int) else None)


def parse_completion(body: Any, fallback_model: str) -> ChatResult:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LLMBadResponse("the provider's answer has no choices[0].message.content") from exc
    if not isinstance(content, str):
        raise LLMBadResponse("choices[0].message.content is not text")
    prompt, completion = _usage(body)
    model = body.get("model") if isinstance(body.get("model"), str) else fallback_model
    return ChatResult(text=content, model=str(model), prompt_tokens=prompt, completion_tokens=completion)


class OpenAIChatClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        connect_timeout: float,
        read_timeout: float,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        max_concurrency: int,
        breaker: CircuitBreaker,
        temperature: float = 0.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            trust_env=False,
        )
        self.model = model
        self._read_timeout = read_timeout
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._slots = asyncio.Semaphore(max_concurrency)
        self.breaker = breaker
        self._temperature = temperature

    async def aclose(self) -> None:
        await self._http.aclose()

    def _payload(self, messages: Sequence[dict[str, str]], max_tokens: int, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": self._temperature,
            "stream": stream,
        }
        if stream:
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _timeout(self, deadline: Deadline) -> httpx.Timeout:
        left = deadline.remaining()
        read = min(self._read_timeout, left)
        return httpx.Timeout(connect=min(self._http.timeout.connect or left, left), read=read, write=read, pool=left)

    async def _acquire(self, deadline: Deadline) -> None:
        if not self.breaker.allow():
            raise LLMUnavailable("the LLM circuit is open")
        try:
            await asyncio.wait_for(self._slots.acquire(), deadline.remaining())
        except TimeoutError as exc:
            raise LLMUnavailable("no LLM slot free before the deadline") from exc

    async def _with_retries(self, deadline: Deadline, attempt_once: Any) -> Any:
        attempt = 0
        while True:
            if deadline.expired:
                self.breaker.record_failure()
                raise LLMUnavailable("the request deadline passed before the LLM answered")
            try:
                result = await attempt_once()
            except _Retryable as exc:
                delay = backoff_delay(attempt, self._backoff_base, self._backoff_max, exc.retry_after)
                if attempt >= self._max_retries or delay >= deadline.remaining():
                    self.breaker.record_failure()
                    raise LLMUnavailable(f"LLM failed after {attempt + 1} attempt(s): {exc}") from exc
                log.info("llm.retry", attempt=attempt + 1, delay_s=round(delay, 3), error=str(exc))
                await asyncio.sleep(delay)
                attempt += 1
                continue
            except LLMError:
                self.breaker.record_failure()
                raise
            self.breaker.record_success()
            return result

    @staticmethod
    def _check_status(response: httpx.Response) -> None:
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(
                f"provider answered {response.status_code}", retry_after_seconds(response.headers.get("retry-after"))
            )
        if response.status_code >= 400:
            raise LLMBadResponse(f"provider answered {response.status_code}")

    async def complete(self, messages: Sequence[dict[str, str]], *, max_tokens: int, deadline: Deadline) -> ChatResult:
        await self._acquire(deadline)
        try:

            async def once() -> ChatResult:
                try:
                    response = await self._http.post(
                        "/chat/completions",
                        json=self._payload(messages, max_tokens, stream=False),
                        timeout=self._timeout(deadline),
                    )
                except httpx.TimeoutException as exc:
                    raise _Retryable(f"timeout ({type(exc).__name__})") from exc
                except httpx.TransportError as exc:
                    raise _Retryable(f"transport error ({type(exc).__name__})") from exc
                self._check_status(response)
                try:
                    body = response.json()
                except ValueError as exc:
                    raise LLMBadResponse("the provider's answer is not JSON") from exc
                return parse_completion(body, self.model)

            result: ChatResult = await self._with_retries(deadline, once)
            return result
        finally:
            self._slots.release()

    async def stream(
        self, messages: Sequence[dict[str, str]], *, max_tokens: int, deadline: Deadline
    ) -> AsyncIterator[StreamDelta | StreamEnd]:
        """Deltas as they arrive, then one :class:`StreamEnd` (with the provider's usage if it sent one)."""
        await self._acquire(deadline)
        try:
            started = False
            attempt = 0
            while True:
                if deadline.expired:
                    self.breaker.record_failure()
                    raise LLMUnavailable("the request deadline passed before the LLM answered")
                try:
                    async for item in self._stream_once(messages, max_tokens, deadline):
                        started = started or isinstance(item, StreamDelta)
                        yield item
                    self.breaker.record_success()
                    return
                except _Retryable as exc:
                    if started:
                        self.breaker.record_failure()
                        raise LLMStreamBroken(f"stream cut after text was sent: {exc}") from exc
                    delay = backoff_delay(attempt, self._backoff_base, self._backoff_max, exc.retry_after)
                    if attempt >= self._max_retries or delay >= deadline.remaining():
                        self.breaker.record_failure()
                        raise LLMUnavailable(f"LLM stream failed after {attempt + 1} attempt(s): {exc}") from exc
                    log.info("llm.retry", attempt=attempt + 1, delay_s=round(delay, 3), error=str(exc), stream=True)
                    await asyncio.sleep(delay)
                    attempt += 1
                except LLMError:
                    self.breaker.record_failure()
                    raise
        finally:
            self._slots.release()

    async def _stream_once(
        self, messages: Sequence[dict[str, str]], max_tokens: int, deadline: Deadline
    ) -> AsyncIterator[StreamDelta | StreamEnd]:
        request = self._http.build_request(
            "POST",
            "/chat/completions",
            json=self._payload(messages, max_tokens, stream=True),
            timeout=self._timeout(deadline),
        )
        model, prompt_tokens, completion_tokens, finished = self.model, None, None, False
        try:
            response = await self._http.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    await response.aread()
                self._check_status(response)
                async for line in response.aiter_lines():
                    if deadline.expired:
                        raise _Retryable("the request deadline passed while streaming")
                    if not line.startswith("data:"):
                        continue
                    data = line.removeprefix("data:").strip()
                    if data == "[DONE]":
                        finished = True
                        break
                    try:
                        body = json.loads(data)
                        choices = body.get("choices") or []
                    except (ValueError, AttributeError) as exc:
                        raise LLMBadResponse("the provider streamed a chunk that is not JSON") from exc
                    if isinstance(body.get("model"), str):
                        model = body["model"]
                    usage = _usage(body)
                    if usage != (None, None):
                        prompt_tokens, completion_tokens = usage
                    for choice in choices:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            yield StreamDelta(delta)
                        if choice.get("finish_reason"):
                            finished = True  # usage may still follow in a last chunk before [DONE]
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"transport error ({type(exc).__name__})") from exc
        if not finished:
            raise _Retryable("the stream ended without [DONE] or a finish reason")
        yield StreamEnd(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
