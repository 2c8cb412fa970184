"""The GLM client against the loopback fake: retries by business code, deadline, limits, usage."""

import json
import re
import time
from pathlib import Path

import anyio
import pytest

from mcp_server.config import load_data_yaml, load_settings
from mcp_server.delegation.glm import MODEL_ID_LIMIT, GlmClient, GlmError, parse_completion
from mcp_server.demo.chat_sim import completion_body
from mcp_server.demo.loopback import LoopbackServer, QuietHandler
from tests.fakes.fake_glm import ErrorReply, FakeGlm, RawReply, Reply

KEY = "sk-glm-0123456789.secretsecret"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake():
    with FakeGlm() as server:
        yield server


def client_for(fake, tmp_path, **env):
    environ = {"HYBRID_GLM_BASE_URL": fake.base_url, "HYBRID_GLM_BACKOFF_BASE_S": "0.01", "HYBRID_GLM_DEADLINE_S": "5"}
    environ.update(env)
    return GlmClient(load_settings(tmp_path, environ=environ).glm, KEY)


def chat(client, model="glm-4.7"):
    async def go():
        try:
            return await client.chat(model, MESSAGES)
        finally:
            await client.aclose()

    return anyio.run(go)


def test_request_body_and_usage(fake, tmp_path):
    fake.reply("ok", prompt_tokens=11, completion_tokens=7, cached_tokens=3)
    completion = chat(client_for(fake, tmp_path))
    assert completion.text == "ok" and completion.attempts == 1
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.cached_tokens) == (11, 7, 3)
    body = fake.requests[0].body
    assert body["model"] == "glm-4.7" and body["stream"] is False and body["thinking"] == {"type": "disabled"}
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_thinking_null_sends_no_field(fake, tmp_path):
    fake.reply("ok")
    chat(client_for(fake, tmp_path, HYBRID_GLM_THINKING="null"))
    assert "thinking" not in fake.requests[0].body


def test_1302_is_retried_then_succeeds(fake, tmp_path):
    fake.error(429, code="1302", message="High concurrency").error(500, message="boom").reply("ok")
    completion = chat(client_for(fake, tmp_path))
    assert completion.text == "ok" and completion.attempts == 3 and len(fake.requests) == 3


@pytest.mark.parametrize("code", ["1113", "1304", "1308", "1310", "1313"])
def test_429_with_a_quota_code_is_never_retried(fake, tmp_path, code):
    fake.error(429, code=code, message="quota")
    with pytest.raises(GlmError) as error:
        chat(client_for(fake, tmp_path))
    assert len(fake.requests) == 1 and error.value.code == code and code in str(error.value)


def test_1113_message_points_at_the_base_url(fake, tmp_path):
    fake.error(429, code="1113", message="Insufficient balance or no resource package. Please recharge.")
    with pytest.raises(GlmError, match="coding/paas/v4") as error:
        chat(client_for(fake, tmp_path))
    assert fake.base_url in str(error.value)


def test_top_level_integer_code_is_understood(fake, tmp_path):
    fake.raw(400, b'{"code": 1211, "message": "Unknown Model"}')
    with pytest.raises(GlmError, match="does not exist") as error:
        chat(client_for(fake, tmp_path), model="glm-9")
    assert error.value.code == "1211" and "glm-9" in str(error.value)


def test_retry_after_is_honoured(fake, tmp_path):
    fake.error(429, code="1302", retry_after="1").reply("ok")
    started = time.monotonic()
    chat(client_for(fake, tmp_path))
    assert fake.requests[1].started - fake.requests[0].finished >= 0.9
    assert time.monotonic() - started < 5


def test_429_storm_ends_at_the_deadline(fake, tmp_path):
    fake.responder = lambda request: ErrorReply(429, code="1302", message="High concurrency")
    with pytest.raises(GlmError, match="gave up after") as error:
        chat(client_for(fake, tmp_path, HYBRID_GLM_DEADLINE_S="1", HYBRID_GLM_MAX_RETRIES="20"))
    # The deadline may cut the last attempt off before the fake server has recorded it.
    assert len(fake.requests) > 1 and error.value.attempts in (len(fake.requests), len(fake.requests) + 1)


def test_connection_refused_is_clear_and_bounded(tmp_path):
    settings = load_settings(
        tmp_path, environ={"HYBRID_GLM_BASE_URL": "http://127.0.0.1:9/v4", "HYBRID_GLM_DEADLINE_S": "1", "HYBRID_GLM_BACKOFF_BASE_S": "0.05"}
    )
    started = time.monotonic()
    with pytest.raises(GlmError, match="could not reach http://127.0.0.1:9/v4") as error:
        chat(GlmClient(settings.glm, KEY))
    assert time.monotonic() - started < 5 and KEY not in str(error.value)


def test_garbage_200_is_not_retried(fake, tmp_path):
    fake.raw(200, b"<html>proxy login</html>")
    with pytest.raises(GlmError, match="not JSON"):
        chat(client_for(fake, tmp_path))
    assert len(fake.requests) == 1


def test_missing_usage_is_flagged_not_invented(fake, tmp_path):
    fake.raw(200, b'{"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}')
    completion = chat(client_for(fake, tmp_path))
    assert completion.usage.reported is False and completion.usage.prompt_tokens == 0


def test_a_key_echoed_by_the_server_is_scrubbed(fake, tmp_path):
    fake.error(401, code="1000", message=f"bad token Bearer {KEY}")
    with pytest.raises(GlmError) as error:
        chat(client_for(fake, tmp_path))
    assert KEY not in str(error.value) and "***" in str(error.value)


def test_missing_key_fails_before_any_request(fake, tmp_path):
    client = GlmClient(load_settings(tmp_path, environ={"HYBRID_GLM_BASE_URL": fake.base_url}).glm, None)
    with pytest.raises(GlmError, match="ZAI_API_KEY"):
        chat(client)
    assert fake.requests == []


def test_per_model_concurrency_limit(fake, tmp_path):
    fake.default_delay_s = 0.3
    fake.responder = lambda request: Reply("ok")
    client = client_for(fake, tmp_path, HYBRID_GLM_MAX_CONCURRENCY="2")

    async def go():
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(client.chat, "glm-4.7", MESSAGES)
            group.start_soon(client.chat, "glm-4.5-air", MESSAGES)
        await client.aclose()

    anyio.run(go)
    spans = sorted((r.started, r.finished, r.body["model"]) for r in fake.requests)
    for start, _, model in spans:
        in_flight = sum(1 for s, f, m in spans if m == model and s <= start < f)
        assert in_flight <= 2
    # The other model was not held back by glm-4.7's limit.
    air = next(s for s, _, m in spans if m == "glm-4.5-air")
    assert air < sorted(f for _, f, m in spans if m == "glm-4.7")[1]


# --- the deadline holds even against a server that trickles its answer ---------------------------


class TrickleGlm(LoopbackServer):
    """Answers 200 with a whole, valid body, one byte every ``every_s``: each read is quick, so
    httpx's read timeout never fires; only a bound on the whole answer ends the call."""

    def __init__(self, every_s: float):
        self.every_s = every_s
        self.requests = 0

    def handler(self) -> type[QuietHandler]:
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                server.requests += 1
                body = json.dumps(completion_body(Reply("ok"), "glm-4.7")).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        time.sleep(server.every_s)
                except OSError:
                    pass  # the client hung up: what the test wants

        return Handler

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/paas/v4"


def test_a_trickling_answer_ends_at_the_deadline(tmp_path):
    with TrickleGlm(every_s=0.05) as trickle:  # the whole body would take about 15 s
        started = time.monotonic()
        with pytest.raises(GlmError, match="deadline") as error:
            chat(client_for(trickle, tmp_path, HYBRID_GLM_DEADLINE_S="1.5"))
        elapsed = time.monotonic() - started
    assert elapsed < 3.5 and error.value.attempts == trickle.requests == 1


def test_a_trickling_answer_is_retried_while_time_remains(tmp_path):
    with TrickleGlm(every_s=0.05) as trickle:
        started = time.monotonic()
        with pytest.raises(GlmError, match="gave up after .* the 2.5 s deadline") as error:
            chat(client_for(trickle, tmp_path, HYBRID_GLM_DEADLINE_S="2.5", HYBRID_GLM_REQUEST_TIMEOUT_S="0.5"))
        elapsed = time.monotonic() - started
    assert elapsed < 4.5 and error.value.attempts == trickle.requests > 1


def test_no_free_slot_sends_no_request(fake, tmp_path):
    client = client_for(fake, tmp_path, HYBRID_GLM_DEADLINE_S="0.3")

    async def go():
        busy = anyio.Semaphore(1)
        await busy.acquire()  # another call holds the model's only slot for longer than the deadline
        client._limits["glm-4.7"] = busy
        return await client.chat("glm-4.7", MESSAGES)

    with pytest.raises(GlmError, match="free slot") as error:
        anyio.run(go)
    assert error.value.attempts == 0 and fake.requests == []


# --- what the endpoint says is not trusted blindly -----------------------------------------------


@pytest.mark.parametrize(
    "answered, expected",
    [("glm-4.7-0925", "glm-4.7-0925"), ("m" * 5000, "m" * MODEL_ID_LIMIT), (None, "glm-4.7"), (42, "glm-4.7"), ({"x": 1}, "glm-4.7"), ("  ", "glm-4.7")],
)
def test_the_answered_model_is_clipped_or_replaced(answered, expected):
    body = {"model": answered, "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}
    _, model, _, _ = parse_completion(body, requested_model="glm-4.7")
    assert model == expected


def test_odd_usage_counts_become_sane_numbers():
    body = {
        "choices": [{"message": {"content": "hi"}}],
        "usage": {"prompt_tokens": "12", "completion_tokens": -5, "prompt_tokens_details": None, "completion_tokens_details": {"reasoning_tokens": 1e300}},
    }
    _, _, usage, _ = parse_completion(body, requested_model="glm-4.7")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (12, 0, 0)
    assert 0 < usage.reasoning_tokens <= 10**10
    body["usage"] = {"prompt_tokens": "9" * 5000, "completion_tokens": "lots"}
    _, _, usage, _ = parse_completion(body, requested_model="glm-4.7")
    assert (usage.prompt_tokens, usage.completion_tokens) == (0, 0)


# --- the error table and docs/glm-api.md agree ----------------------------------------------------


def _documented_codes() -> dict[str, bool]:
    """code -> retry, from the table in section 4 of docs/glm-api.md."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "glm-api.md").read_text(encoding="utf-8")
    section = doc.split("## 4. Errors", 1)[1].split("## 5.", 1)[0]
    codes = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.match(r"^\d", cells[0]):
            continue
        retry = cells[3].strip("*").startswith("yes")
        for part in cells[0].replace("\u2020", "").split("/"):
            part = part.strip()
            if "\u2013" in part:  # a range, 1316\u20131321
                low, high = part.split("\u2013")
                codes.update({str(code): retry for code in range(int(low), int(high) + 1)})
            else:
                codes[part] = retry
    return codes


def test_every_documented_code_is_in_the_error_table_with_the_same_verdict():
    documented = _documented_codes()
    table = {code: bool(row["retry"]) for code, row in load_data_yaml("glm_errors.yaml")["codes"].items()}
    assert {"1230", "1231", "1234", "1316", "1321"} <= set(documented)  # the parser reads the table
    assert documented == table
