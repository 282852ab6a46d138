"""A TCP relay to put between the SDK and a control plane, so a test can cut the SDK's
connections the way a flaky network or a restarted proxy does: ``cut()`` resets every relayed
connection at once; while ``down`` is set, new connections are accepted and reset at once.

Invariant: ``_peer`` maps each open relayed socket to its other end; only the relay's own
thread touches sockets (closing a socket another thread is blocked on would not wake it).
Concurrency: ``cut()`` and ``close()`` from the test's thread only post a request, under
``_lock``, and wait until the relay's thread has carried it out.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from urllib.parse import urlsplit


def _reset(s: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST, as a crashed peer or a cut path would.
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


class TcpRelay:
    def __init__(self, target_url: str) -> None:
        t = urlsplit(target_url)
        self._target = (t.hostname or "127.0.0.1", t.port or 80)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.setblocking(False)
        self.url = f"{t.scheme}://127.0.0.1:{self._server.getsockname()[1]}"
        self.down = False
        self.accepted = 0
        self._peer: dict[socket.socket, socket.socket] = {}
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._server, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._requests: list[tuple[str, threading.Event]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Reset every connection relayed so far; later connections relay again."""
        self._request("cut")

    def close(self) -> None:
        self._request("close")
        self._thread.join(5)

    def _request(self, what: str) -> None:
        done = threading.Event()
        with self._lock:
            self._requests.append((what, done))
        done.wait(5)

    def _run(self) -> None:
        while True:
            with self._lock:
                requests, self._requests = self._requests, []
            for what, done in requests:
                self._reset_all()
                if what == "close":
                    self._sel.unregister(self._server)
                    self._server.close()
                    done.set()
                    return
                done.set()
            for key, _ in self._sel.select(0.02):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if s is self._server:
                    self._accept()
                else:
                    self._forward(s)

    def _accept(self) -> None:
        try:
            client, _ = self._server.accept()
        except OSError:
            return
        if self.down:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            _reset(client)
            return
        self.accepted += 1
        for s in (client, upstream):
            s.setblocking(True)
            self._sel.register(s, selectors.EVENT_READ)
        self._peer[client] = upstream
        self._peer[upstream] = client

    def _forward(self, s: socket.socket) -> None:
        peer = self._peer[s]
        try:
            data = s.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._drop(s, reset=False)

    def _drop(self, s: socket.socket, *, reset: bool) -> None:
        peer = self._peer.pop(s)
        del self._peer[peer]
        for x in (s, peer):
            self._sel.unregister(x)
            if reset:
                _reset(x)
            else:
                x.close()

    def _reset_all(self) -> None:
        while self._peer:
            self._drop(next(iter(self._peer)), reset=True)
