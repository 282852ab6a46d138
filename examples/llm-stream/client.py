#!/usr/bin/env python3
"""Chat with a model worker through herd from Python: hold a session, stream two replies with
httpx, and check that the second one remembers the first.

The session is held (HoldSession) for the ``with`` block: every request carries its headers, so
each turn reaches the same worker, and should this script die the daemon ends the session at
once. Tokens are printed as the NDJSON chunks arrive. Real Ollama wants the whole history in
``messages``; the fake model keeps each session's conversation in its own process instead, so
each turn here sends only the new message, and a second reply that quotes the first prompt
proves the session stayed on its worker. The last line printed is a JSON summary (with each
token's arrival time) for scripts. Needs examples/llm-stream/setup.sh.

  .venv/bin/python examples/llm-stream/client.py --control http://127.0.0.1:7070 "my name is Ann"
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import herd
import httpx


class ChatError(Exception):
    """The worker answered, but not the way this example expects."""


@dataclass
class Turn:
    prompt: str
    reply: str = ""
    # Seconds since the request was sent: when each token arrived, and when the final chunk did.
    token_times: list[float] = field(default_factory=list)
    done_time: float | None = None


def parse_chunk(line: str) -> dict[str, Any]:
    try:
        chunk = json.loads(line)
    except json.JSONDecodeError as e:
        raise ChatError(f"not an NDJSON line ({e}): {line!r}") from None
    if not isinstance(chunk, dict):
        raise ChatError(f"an NDJSON line that is not an object: {line!r}")
    return chunk


def stream_turn(http: httpx.Client, session: herd.HeldSession, model: str, prompt: str) -> Turn:
    """Send one user message in the session and print the reply's tokens as they arrive."""
    turn = Turn(prompt)
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
    started = time.monotonic()
    print(f"> {prompt}", flush=True)
    with http.stream(
        "POST", f"{session.proxy_url}/api/chat", headers=session.headers, json=body
    ) as response:
        if response.status_code != 200:
            response.read()
            raise ChatError(f"POST /api/chat answered {response.status_code}: {response.text}")
        for line in response.iter_lines():
            if not line:
                continue
            chunk = parse_chunk(line)
            if chunk.get("done") is True:
                turn.done_time = round(time.monotonic() - started, 4)
                break
            message = chunk.get("message")
            token = message.get("content") if isinstance(message, dict) else None
            if not isinstance(token, str):
                raise ChatError(f"a chunk without message.content: {line}")
            turn.token_times.append(round(time.monotonic() - started, 4))
            turn.reply += token
            print(token, end="", flush=True)
    print(flush=True)
    if turn.done_time is None:
        raise ChatError(f"the stream ended before the model said done (after {turn.reply!r})")
    return turn


def check_memory(first: Turn, second: Turn) -> str:
    """The fake model's replies read 'Turn N on worker ID. You said "...". Before that you
    said "...".' (ID: the worker process's own random id) — both must come from one worker,
    the second as turn 2 quoting the first prompt. Returns the worker's id."""
    m = re.match(r"Turn 1 on worker (\w+)\.", first.reply)
    if not m:
        raise ChatError(f"the first reply is not turn 1: {first.reply!r}")
    worker = m.group(1)
    if not second.reply.startswith(f"Turn 2 on worker {worker}."):
        raise ChatError(f"the second reply is not turn 2 on worker {worker}: {second.reply!r}")
    if f'Before that you said "{first.prompt}".' not in second.reply:
        raise ChatError(f"the worker forgot the first message: {second.reply!r}")
    return worker


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompt", help="first message; the second asks what it was")
    parser.add_argument("--control", default="http://127.0.0.1:7070", help="control plane URL")
    parser.add_argument("--pool", default="llm")
    parser.add_argument("--model", default="herd-fake")
    parser.add_argument("--follow-up", default="What did I just tell you?")
    args = parser.parse_args()

    try:
        with (
            herd.Client(args.control) as client,
            client.session(args.pool, wait=60) as s,
            httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as http,
        ):
            print(f"session {s.id} on worker pid {s.worker_pid}", flush=True)
            first = stream_turn(http, s, args.model, args.prompt)
            second = stream_turn(http, s, args.model, args.follow_up)
            worker = check_memory(first, second)
            summary = {
                "session": s.id,
                "worker_pid": s.worker_pid,
                "worker": worker,
                "turns": [asdict(first), asdict(second)],
            }
    except herd.HerdError as e:
        print(f"error: herd at {args.control}: {e}", file=sys.stderr)
        return 1
    except httpx.HTTPError as e:
        print(f"error: data plane request failed: {e!r}", file=sys.stderr)
        return 1
    except ChatError as e:
        print(f"error: unexpected answer from the model: {e}", file=sys.stderr)
        return 1
    print("ok: the worker remembered the conversation", flush=True)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
