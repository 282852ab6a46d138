"""The Python driver of the SDK scenario suite (sdk/ts/test/scenarios.spec.ts): the same
steps and JSON lines as the TypeScript and Go drivers, through herd's public API.

    python scenario_driver.py <identity|errors|watch|logs-usage|hold|tenant-key> <control_url> <pool>

tenant-key reads the key from HERD_SCENARIO_KEY and the recorder's URL from
HERD_SCENARIO_RECORDER (see the TypeScript driver); the AsyncClient sends to /py-async.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import herd
from herd import SessionEventType

PREFIX = "SESSION_EVENT_TYPE_"


def out(obj: object) -> None:
    print(json.dumps(obj), flush=True)


def get(url: str, headers: dict[str, str], method: str = "GET") -> bytes:
    req = urllib.request.Request(url, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        body: bytes = r.read()
        return body


def error_code(call: Callable[[], object]) -> str:
    try:
        call()
    except herd.HerdError as e:
        return e.code_name
    return "ok"


async def _async_logged(url: str, session_id: str) -> bool:
    """The AsyncClient's tail_logs and usage see the same session."""
    async with herd.AsyncClient(url, timeout=30) as client:
        held = b"".join([piece async for piece in client.tail_logs(session_id)])
        return b"py-before\n" in held and await client.usage(session_id) is not None


async def _async_keyed(url: str, pool: str, key: str, recorder: str) -> str:
    """The AsyncClient's sessions carry the key too (its own path at the recorder)."""
    async with herd.AsyncClient(url, tenant_key=key, timeout=30) as client:
        async with await client.acquire(pool) as s:
            get(recorder + "/py-async", s.headers)
            return s.id


def main(step: str, url: str, pool: str) -> None:
    client = herd.Client(url, timeout=30)
    if step == "tenant-key":
        key, recorder = os.environ["HERD_SCENARIO_KEY"], os.environ["HERD_SCENARIO_RECORDER"]
        keyed = herd.Client(url, tenant_key=key, timeout=30)
        with keyed.acquire(pool) as s:
            get(recorder + "/py", s.headers)
            reached = json.loads(get(s.proxy_url + "/whoami", s.headers))["pid"] == s.worker_pid
            with keyed.session(pool) as held:
                get(recorder + "/py-held", held.headers)
            sessions = {"py": s.id, "py-held": held.id}
        sessions["py-async"] = asyncio.run(_async_keyed(url, pool, key, recorder))
        out({"sessions": sessions, "reached": reached})
    elif step == "identity":
        with client.acquire(pool) as s:
            pids = [json.loads(get(s.proxy_url + "/whoami", s.headers))["pid"] for _ in range(3)]
            out({"session": s.id, "workerPid": s.worker_pid, "pids": pids})
    elif step == "errors":
        out(
            {
                "unknownPool": error_code(lambda: client.acquire("no-such-pool")),
                "invalidId": error_code(lambda: client.acquire(pool, session_id="bad id!")),
            }
        )
    elif step == "watch":
        ids = [f"py-a-{os.getpid()}", f"py-b-{os.getpid()}"]
        events: list[list[str]] = []
        stream = client.watch(pool, snapshot=True)
        for ev in stream:
            if ev.type == SessionEventType.SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE:
                client.acquire(pool, session_id=ids[0]).release()
                b = client.acquire(pool, session_id=ids[1])
                try:
                    get(b.proxy_url + "/control/crash?code=3", b.headers, method="POST")
                except (urllib.error.URLError, ConnectionError):
                    pass  # the worker dies mid-request: no answer expected
            elif ev.session_id in ids:
                name = SessionEventType.Name(ev.type).removeprefix(PREFIX)
                events.append([name, "a" if ev.session_id == ids[0] else "b"])
                if ev.type == SessionEventType.SESSION_EVENT_TYPE_SESSION_LOST:
                    break
        stream.close()
        out({"events": events})
    elif step == "logs-usage":
        with client.acquire(pool) as s:
            get(s.proxy_url + "/whoami", s.headers)
            get(s.proxy_url + "/control/stderr?line=py-before", s.headers, method="POST")
            logged = b"py-before\n" in b"".join(client.tail_logs(s.id))
            stream = client.tail_logs(s.id, follow=True)
            seen = b""
            for piece in stream:
                seen += piece
                if b"py-before\n" in seen and b"py-after" not in seen:
                    get(s.proxy_url + "/control/stderr?line=py-after", s.headers, method="POST")
                if b"py-after\n" in seen:
                    break
            stream.close()
            usage = client.usage(s.id)
            assert usage is not None
            logged = logged and asyncio.run(_async_logged(url, s.id))
            out(
                {
                    "logged": logged,
                    "followed": b"py-after\n" in seen,
                    "rx": usage.rx_bytes,
                    "tx": usage.tx_bytes,
                    "cpuKnown": usage.HasField("cpu_seconds"),
                }
            )
    elif step == "hold":
        with client.session(pool) as held:
            out({"held": held.id, "workerPid": held.worker_pid})
            while True:
                time.sleep(60)
    else:
        sys.exit(f"unknown step {step}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: scenario_driver.py <identity|errors|watch|hold> <control_url> <pool>")
    main(*sys.argv[1:])
