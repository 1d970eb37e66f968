"""The project's one test double: an OpenAI-compatible server on 127.0.0.1, run as its own process.

Tests and `tenantq bench pipeline` exercise the real LiteLLM HTTP path against it: retries on 429 and 500,
fallbacks, timeouts, usage and cost. Behaviour is set per model name at runtime through POST /_control
(delay, failures to answer first, permanent failure, hang, token counts, reply text); GET /_requests shows
what was sent. It runs in a separate process so a slow or hung answer never shares a loop with the client
under test, and asyncio lets it hold hundreds of slow requests at once.

    python -m providers.loopback --port 0      # prints "listening on http://127.0.0.1:N"

    with LoopbackServer() as server:
        server.control(model="gpt-4o-mini", fail_first=[429, 429], completion_tokens=7)
        route = ModelConfig(name="x", model="openai/gpt-4o-mini", api_base=server.api_base, ...)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import select
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from providers.schema_fill import fit_to_schema

OPTIONS = {"delay_s": 0.0, "fail_first": [], "always_fail_status": None, "hang": False,
           "prompt_tokens": None, "completion_tokens": None, "reply": None, "error_quotes_prompt": False}
"""Per-model behaviour; unset options come from the default (model None), then from these values.
`error_quotes_prompt`: an error's message quotes the last user message, as a content-policy refusal does."""

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.configs: dict[str | None, dict[str, Any]] = {}
        self.calls: dict[str, int] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=50_000)
        self.served = 0

    def behaviour(self, model: str) -> dict[str, Any]:
        return {**OPTIONS, **self.configs.get(None, {}), **self.configs.get(model, {})}


def build_app() -> web.Application:
    state = _State()
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", lambda r: _chat(r, state))
    app.router.add_post("/chat/completions", lambda r: _chat(r, state))
    app.router.add_get("/v1/models", lambda r: _models(state))
    app.router.add_get("/models", lambda r: _models(state))
    app.router.add_post("/_control", lambda r: _control(r, state))
    app.router.add_get("/_requests", lambda r: _requests(r, state))
    app.router.add_post("/_reset", lambda r: _reset(state))
    app.router.add_get("/_health", lambda r: _health(state))
    return app


async def _chat(request: web.Request, state: _State) -> web.Response:
    body = await request.json()
    model = str(body.get("model") or "")
    state.requests.append({
        "model": model, "messages": body.get("messages"), "temperature": body.get("temperature"),
        "max_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
        "response_format": body.get("response_format"),
    })
    behaviour = state.behaviour(model)
    call = state.calls.get(model, 0)
    state.calls[model] = call + 1
    if behaviour["hang"]:
        await asyncio.sleep(3600)
    if behaviour["delay_s"]:
        await asyncio.sleep(float(behaviour["delay_s"]))
    failures = list(behaviour["fail_first"] or [])
    status = failures[call] if call < len(failures) else behaviour["always_fail_status"]
    if status:
        quoted = _last_user_text(body) if behaviour["error_quotes_prompt"] else None
        return _error(int(status), model, quoted)
    state.served += 1
    text = _reply_text(body, behaviour)
    prompt_tokens = behaviour["prompt_tokens"]
    if prompt_tokens is None:
        prompt_tokens = max(1, len(json.dumps(body.get("messages") or [])) // 4)
    completion_tokens = behaviour["completion_tokens"]
    if completion_tokens is None:
        completion_tokens = max(1, len(text) // 4)
    return web.json_response({
        "id": f"chatcmpl-loopback-{state.served}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": "loopback",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })


def _last_user_text(body: dict[str, Any]) -> str:
    last_user = next((m.get("content") for m in reversed(body.get("messages") or [])
                      if isinstance(m, dict) and m.get("role") == "user"), "")
    if isinstance(last_user, list):
        last_user = " ".join(str(p.get("text", "")) for p in last_user if isinstance(p, dict))
    return str(last_user)


def _reply_text(body: dict[str, Any], behaviour: dict[str, Any]) -> str:
    if behaviour["reply"] is not None:
        return str(behaviour["reply"])
    echo = f"echo: {_last_user_text(body)}"
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        return json.dumps(fit_to_schema(schema, {}, echo))
    if response_format.get("type") == "json_object":
        return json.dumps({"reply": echo})
    return echo


def _error(status: int, model: str, quoted: str | None = None) -> web.Response:
    error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    headers = {"retry-after": "0"} if status == 429 else None
    said = f"loopback answers {status} for model {model}"
    if quoted is not None:
        said += f": the request was refused because of this text: {quoted[:500]!r}"
    return web.json_response({"error": {"message": said,
                                        "type": error_type, "param": None, "code": str(status)}},
                             status=status, headers=headers)


async def _models(state: _State) -> web.Response:
    names = sorted({*state.calls, *(m for m in state.configs if m)})
    return web.json_response({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "loopback"} for name in names]})


async def _control(request: web.Request, state: _State) -> web.Response:
    body = await request.json()
    model = body.pop("model", None)
    unknown = set(body) - set(OPTIONS)
    if unknown:
        return web.json_response({"error": f"unknown options {sorted(unknown)}; known: {sorted(OPTIONS)}"},
                                 status=400)
    state.configs.setdefault(model, {}).update(body)
    if model is None:
        state.calls.clear()
    else:
        state.calls.pop(model, None)  # fail_first counts from the next request
    return web.json_response({"model": model, "behaviour": state.configs[model]})


async def _requests(request: web.Request, state: _State) -> web.Response:
    model = request.query.get("model")
    found = [r for r in state.requests if model is None or r["model"] == model]
    return web.json_response({"requests": found, "served": state.served})


async def _reset(state: _State) -> web.Response:
    state.reset()
    return web.json_response({"reset": True})


async def _health(state: _State) -> web.Response:
    return web.json_response({"ok": True, "served": state.served})


async def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve until SIGTERM or SIGINT; print the URL once the socket listens."""
    # handler_cancellation: a hung request ends when its client gives up, and shutdown does not wait for it.
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=False, handler_cancellation=True,
                           shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


class LoopbackServer:
    """Starts `python -m providers.loopback` on a free port, waits until it listens, stops it on exit."""

    def __init__(self, port: int = 0, startup_timeout_s: float = 15.0) -> None:
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def api_base(self) -> str:
        """What a ModelConfig's api_base should be."""
        return f"{self.url}/v1"

    def __enter__(self) -> LoopbackServer:
        root = str(Path(__file__).resolve().parent.parent)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "providers.loopback", "--port", str(self.port)],
            cwd=root, stdout=subprocess.PIPE, text=True,
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], self.startup_timeout_s)
        line = self._process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"loopback server did not start within {self.startup_timeout_s}s: {line!r}")
        self.url = line.split("listening on ", 1)[1].strip()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def control(self, model: str | None = None, **options: Any) -> dict[str, Any]:
        """Set behaviour for one model name as the server sees it ("gpt-4o-mini", not "openai/...");
        model None sets the default of every model. Options: see OPTIONS."""
        return self._post("/_control", {"model": model, **options})

    def requests(self, model: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests: model, messages, max_tokens, temperature, response_format."""
        query = f"?model={urllib.parse.quote(model)}" if model else ""
        with urllib.request.urlopen(f"{self.url}/_requests{query}", timeout=10) as answer:
            found: list[dict[str, Any]] = json.load(answer)["requests"]
        return found

    def reset(self) -> None:
        self._post("/_reset", {})

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method="POST",
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            result: dict[str, Any] = json.load(answer)
        return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible loopback server for tests and benches.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed).")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.host))


if __name__ == "__main__":
    main()
