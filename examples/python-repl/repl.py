#!/usr/bin/env python3
"""A stateful Python REPL served over HTTP: one process = one interpreter session.

Variables defined by one /exec call are there for the next, because they live in this
process's globals. herd pins each session to one such process, so two sessions never see
each other's variables. Standard library only.

  GET  /health   "ok"
  POST /exec     body: Python source (raw text, or JSON {"code": "..."}). Runs it in this
                 process's persistent namespace; if the last statement is an expression its
                 repr is returned, as in the interactive prompt. Responds JSON
                 {"ok", "stdout", "stderr", "result", "error"} ("error" holds the traceback).
  GET  /vars     names currently defined in the namespace
  POST /crash    an uncaught exception in the main thread: the traceback goes to stderr and
                 the process exits 1 (what herd reports as the lost session's reason).

Concurrency: requests are served on threads (so /health answers while code runs), but code
runs one call at a time under a lock because it swaps sys.stdout/sys.stderr to capture output.
"""

import ast
import contextlib
import io
import json
import os
import queue
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMESPACE = {"__name__": "__repl__", "__builtins__": __builtins__}
EXEC_LOCK = threading.Lock()
# The main thread waits here; a handler puts an exception to raise there (a real crash) or
# an exit code (code that called sys.exit()).
MAIN_EVENTS: "queue.Queue[BaseException | int]" = queue.Queue()


def session_traceback(e):
    """The traceback from the session's code down, without this file's frames."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<session>":
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def run(code):
    """Executes code in NAMESPACE; returns the JSON-able outcome."""
    out, err = io.StringIO(), io.StringIO()
    result, error = None, None
    with EXEC_LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            tree = ast.parse(code, filename="<session>", mode="exec")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, "<session>", "exec"), NAMESPACE)
            if last is not None:
                value = eval(compile(last, "<session>", "eval"), NAMESPACE)
                if value is not None:
                    result = repr(value)
        except SystemExit as e:
            MAIN_EVENTS.put(e.code if isinstance(e.code, int) else 1)
            error = "SystemExit"
        except Exception as e:  # the session's own error: report it, keep the interpreter alive
            error = session_traceback(e)
    return {"ok": error is None, "stdout": out.getvalue(), "stderr": err.getvalue(),
            "result": result, "error": error}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep stderr for tracebacks only
        pass

    def send(self, status, body, content_type="application/json"):
        data = (json.dumps(body) + "\n").encode() if content_type == "application/json" else body
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length).decode("utf-8") if length else ""

    def do_GET(self):
        if self.path == "/health":
            self.send(200, b"ok", "text/plain")
        elif self.path == "/vars":
            names = sorted(k for k in NAMESPACE if not k.startswith("__"))
            self.send(200, {"pid": os.getpid(), "vars": names})
        else:
            self.send(404, {"error": f"no route GET {self.path}"})

    def do_POST(self):
        if self.path == "/exec":
            text = self.body()
            if self.headers.get("content-type", "").startswith("application/json"):
                try:
                    text = json.loads(text)["code"]
                except (ValueError, KeyError, TypeError):
                    return self.send(400, {"error": 'expected JSON {"code": "..."}'})
            self.send(200, {"pid": os.getpid(), **run(text)})
        elif self.path == "/crash":
            self.body()
            self.send(200, {"pid": os.getpid(), "crashing": True})
            MAIN_EVENTS.put(RuntimeError("crash requested via POST /crash"))
        else:
            self.send(404, {"error": f"no route POST {self.path}"})


def port_from_args():
    args = sys.argv[1:]
    if "--port" in args:
        return args[args.index("--port") + 1]
    return os.environ.get("PORT", "0")


def main():
    text = port_from_args()
    if not text.isdigit() or int(text) > 65535:
        sys.exit(f"python-repl: invalid port {text!r} (give --port N or PORT=N)")
    server = ThreadingHTTPServer(("127.0.0.1", int(text)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"ready {server.server_address[1]}", flush=True)
    while True:
        event = MAIN_EVENTS.get()
        if isinstance(event, BaseException):
            raise event  # uncaught: Python prints the traceback to stderr and exits 1
        sys.stderr.flush()
        os._exit(event)


if __name__ == "__main__":
    main()
