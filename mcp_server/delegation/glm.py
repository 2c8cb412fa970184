"""The async client for any OpenAI-compatible chat-completions endpoint (Z.ai GLM by default).

One pooled ``httpx.AsyncClient`` for the server's life, at most N requests in flight per
model, and retries with exponential backoff and jitter on transient failures, all inside
one deadline per call. Whether to retry is decided by the business code in the error body
(data/glm_errors.yaml), because Z.ai answers HTTP 429 for an empty balance too.
The key goes into one header and nowhere else; every message is scrubbed of it anyway.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import anyio
import httpx

from mcp_server.config import GlmSettings, load_data_yaml
from mcp_server.delegation.errors import DelegationError

log = logging.getLogger("hybrid.glm")

# The model id the endpoint answers with goes into the ledger and the result Claude reads: bounded.
MODEL_ID_LIMIT = 100
# Token counts beyond this are not real; they would only break the result's size and the costs.
MAX_TOKEN_COUNT = 10**10

KEY_HELP = (
    "no GLM API key: export ZAI_API_KEY (or GLM_API_KEY) before starting Claude Code, or set the "
    "plugin option glm_api_key (/plugin, then hybrid, then configure). A local endpoint without "
    "auth still needs a placeholder key."
)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    reported: bool = True  # False: the endpoint sent no usage block


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    usage: Usage
    finish_reason: str | None
    latency_s: float  # the successful request alone
    attempts: int


class GlmError(DelegationError):
    """A GLM call failed; the message is for the user and never holds the key."""

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None, attempts: int = 0):
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.attempts = attempts


@dataclass(frozen=True)
class _Failure:
    message: str
    retry: bool
    code: str | None = None
    http_status: int | None = None
    retry_after_s: float | None = None


@lru_cache(maxsize=1)
def _error_table() -> dict[str, dict[str, dict[str, Any]]]:
    return load_data_yaml("glm_errors.yaml")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200].strip()
    if not isinstance(body, dict):
        return None, str(body)[:200]
    # Observed bodies wrap it ({"error": {"code": "1302"}}); the OpenAPI spec has a top-level int code.
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    code = error.get("code")
    return (str(code) if code is not None else None), str(error.get("message") or "")[:300]


def classify(response: httpx.Response, *, model: str, base_url: str) -> _Failure:
    """An HTTP error response as a failure: retry or not, and the user's message."""
    code, detail = _error_body(response)
    status = response.status_code
    table = _error_table()
    row = table["codes"].get(code or "") or table["statuses"].get(str(status))
    if row is None:
        retry = status >= 500
        text = f"the GLM endpoint failed (HTTP {status})" if retry else f"the GLM endpoint refused the request (HTTP {status})"
    else:
        retry = bool(row["retry"])
        text = row["message"].format(model=model, base_url=base_url)
    origin = f"HTTP {status}" + (f", code {code}" if code else "")
    if detail:
        origin += f": {detail}"
    return _Failure(f"{text} [{origin}]", retry, code, status, _retry_after(response))


def _count(value: Any) -> int:
    """A token count from the endpoint: a whole number in [0, MAX_TOKEN_COUNT], else 0."""
    if isinstance(value, str) and len(value) <= 20:
        try:
            value = int(value)
        except ValueError:
            return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
        return 0
    return int(min(max(value, 0), MAX_TOKEN_COUNT))


def _usage(body: dict[str, Any]) -> Usage:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return Usage(reported=False)
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cached_tokens=_count(prompt_details.get("cached_tokens")),
        reasoning_tokens=_count(completion_details.get("reasoning_tokens")),
    )


def _answered_model(body: dict[str, Any], requested_model: str) -> str:
    """The model the endpoint says answered, clipped; the requested one when it says nothing usable."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        return requested_model
    return model.strip()[:MODEL_ID_LIMIT]


def parse_completion(body: Any, *, requested_model: str) -> tuple[str, str, Usage, str | None]:
    """(text, model, usage, finish_reason) from a 200 body; GlmError when it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise GlmError("the GLM endpoint answered 200 without choices; is glm.base_url an OpenAI-compatible endpoint?")
    choice = body["choices"][0] if isinstance(body["choices"][0], dict) else {}
    message = choice.get("message") or {}
    finish_reason = choice.get("finish_reason")
    if finish_reason == "sensitive":
        raise GlmError("the provider's content policy stopped the reply (finish_reason: sensitive)")
    if finish_reason == "model_context_window_exceeded":
        raise GlmError(f"the prompt is too long for {requested_model}; pass fewer or smaller context_files")
    text = message.get("content") if isinstance(message, dict) else None
    return (text if isinstance(text, str) else ""), _answered_model(body, requested_model), _usage(body), finish_reason


class GlmClient:
    def __init__(self, settings: GlmSettings, api_key: str | None):
        self.settings = settings
        self._key = api_key
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._http: httpx.AsyncClient | None = None
        self._limits: dict[str, anyio.Semaphore] = {}
        self._calls_running = 0
        self._retired = False

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            limit = self.settings.max_concurrency_per_model * 4
            self._http = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                headers={"Authorization": f"Bearer {self._key}", "Content-Type": "application/json"},
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def busy(self) -> bool:
        return self._calls_running > 0

    async def retire(self) -> None:
        """Close the pool once the calls running on it end (at once when none is): the server
        hands out a new client when the endpoint settings change, and old calls must finish."""
        self._retired = True
        if self._calls_running == 0:
            await self.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _body(self, model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": self.settings.max_output_tokens,
            "temperature": self.settings.temperature,
            "stream": False,
        }
        if self.settings.thinking is not None:
            body["thinking"] = {"type": "enabled" if self.settings.thinking else "disabled"}
        return body

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** (attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # jitter: parallel agents must not retry in lockstep
        return max(delay, retry_after_s or 0.0)

    async def _attempt(self, model: str, body: dict[str, Any], remaining_s: float) -> Completion | _Failure:
        settings = self.settings
        timeout = httpx.Timeout(
            min(settings.request_timeout_s, remaining_s), connect=min(settings.connect_timeout_s, remaining_s)
        )
        started = time.monotonic()
        try:
            response = await self._client().post(self._url, json=body, timeout=timeout)
        except httpx.TimeoutException:
            return _Failure(f"no answer from {settings.base_url} within the request timeout", retry=True)
        except httpx.TransportError as error:
            return _Failure(f"could not reach {settings.base_url} ({type(error).__name__})", retry=True)
        if response.status_code != 200:
            return classify(response, model=model, base_url=settings.base_url)
        try:
            payload = response.json()
        except ValueError:
            return _Failure(f"{settings.base_url} answered 200 with a body that is not JSON", retry=False, http_status=200)
        try:
            text, answered_model, usage, finish_reason = parse_completion(payload, requested_model=model)
        except GlmError as error:
            return _Failure(str(error), retry=False, http_status=200)
        if finish_reason == "network_error":
            return _Failure(f"inference failed at {settings.base_url} (finish_reason: network_error)", retry=True)
        return Completion(text, answered_model, usage, finish_reason, time.monotonic() - started, attempts=0)

    async def _attempt_in_time(self, model: str, body: dict[str, Any], deadline: float) -> Completion | _Failure:
        """One attempt, cut off at glm.request_timeout_s or the deadline, whichever comes first.

        httpx's timeouts bound each read, not the whole answer: a server trickling bytes could
        otherwise hold one call far past both.
        """
        remaining = deadline - time.monotonic()
        limit = min(self.settings.request_timeout_s, remaining)
        with anyio.move_on_after(limit):
            return await self._attempt(model, body, max(0.1, remaining))
        if limit < remaining:  # time is left: a retry may still get a whole answer
            return _Failure(
                f"no complete answer from {self.settings.base_url} within the request timeout "
                f"({self.settings.request_timeout_s:g} s)",
                retry=True,
            )
        return _Failure(f"{self.settings.base_url} was still answering when the deadline ran out", retry=True)

    @property
    def has_key(self) -> bool:
        return bool(self._key)

    async def chat(self, model: str, messages: list[dict[str, str]]) -> Completion:
        """One completion, retries included, within glm.deadline_s. GlmError.attempts says how
        many requests were sent (0: none, e.g. no key or no free slot)."""
        self._calls_running += 1
        try:
            return await self._chat(model, messages)
        finally:
            self._calls_running -= 1
            if self._retired and self._calls_running == 0:
                with anyio.CancelScope(shield=True):
                    await self.aclose()

    async def _chat(self, model: str, messages: list[dict[str, str]]) -> Completion:
        if not self._key:
            raise GlmError(KEY_HELP)
        deadline = time.monotonic() + self.settings.deadline_s
        body = self._body(model, messages)
        limit = self._limits.setdefault(model, anyio.Semaphore(self.settings.max_concurrency_per_model))
        attempt = 0
        try:
            with anyio.fail_after(self.settings.deadline_s):
                await limit.acquire()
        except TimeoutError:
            raise GlmError(f"waited {self.settings.deadline_s:g} s for a free slot to {model}; too many parallel calls") from None
        try:
            while True:
                attempt += 1
                outcome = await self._attempt_in_time(model, body, deadline)
                if isinstance(outcome, Completion):
                    return dataclasses.replace(outcome, attempts=attempt)
                delay = self._backoff(attempt, outcome.retry_after_s)
                out_of_time = time.monotonic() + delay >= deadline
                if not outcome.retry or attempt > self.settings.max_retries or out_of_time:
                    message = outcome.message
                    if outcome.retry:
                        message += f"; gave up after {attempt} attempt(s) within the {self.settings.deadline_s:g} s deadline"
                    log.warning("GLM call to %s failed: %s", model, self._scrub(message))
                    raise GlmError(self._scrub(message), code=outcome.code, http_status=outcome.http_status, attempts=attempt)
                log.info("GLM call to %s: %s; retry %d in %.2f s", model, self._scrub(outcome.message), attempt, delay)
                await anyio.sleep(delay)
        finally:
            limit.release()
