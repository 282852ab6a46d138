#!/usr/bin/env node
// The demo worker behind `npm start`: a tiny stateful server. Everything it remembers (the
// counter, the notes) lives in this one process, which is exactly what herd's session
// affinity protects: the same session ID always reaches the same process, so its state is
// there on every request. Single-threaded Node: no locking needed.
//
//   GET  /          what this is, with this process's id and counter
//   GET  /counter   increments the counter: {"worker", "counter"}
//   POST /notes     appends the request body as a note; GET /notes lists them
//   GET  /health    "ok"
//   GET  /stream    server-sent events, one token at a time (?text=...&interval=ms)
//   WS   /ws        says "hello <worker>", then echoes every message
//
// `worker` names this process: a random id drawn at start. Not its pid: a contained worker runs
// in a PID namespace of its own, where every worker's pid is the same small number.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";

const portArg = process.argv.indexOf("--port");
const port = Number(portArg >= 0 ? process.argv[portArg + 1] : (process.env.PORT ?? 0));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`demo worker: invalid port (give --port N or PORT=N)`);
  process.exit(2);
}
const greeting = process.env.DEMO_GREETING ?? "hello";
const startedAt = new Date().toISOString();
const worker = randomBytes(4).toString("hex");
let counter = 0;
const notes = [];

function send(res, status, type, text) {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(text);
}
const json = (res, status, body) =>
  send(res, status, "application/json", `${JSON.stringify(body)}\n`);

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => {
      body += c;
      if (body.length > limit) reject(new Error(`note longer than ${limit} bytes`));
    });
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

function stream(req, res, url) {
  const words = (url.searchParams.get("text") ?? "herd keeps this stream on one worker process")
    .split(/\s+/)
    .filter(Boolean);
  const interval = Math.min(Number(url.searchParams.get("interval") ?? 100) || 100, 5000);
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  let i = 0;
  const timer = setInterval(() => {
    if (i < words.length) {
      res.write(`data: ${JSON.stringify({ token: words[i], index: i, worker })}\n\n`);
      i++;
    } else {
      clearInterval(timer);
      res.end("event: done\ndata: {}\n\n");
    }
  }, interval);
  req.on("close", () => clearInterval(timer));
}

async function handle(req, res) {
  const url = new URL(req.url ?? "/", "http://demo");
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case "GET /":
      return send(
        res,
        200,
        "text/plain; charset=utf-8",
        `${greeting}!\n\n` +
          `This is the herd demo worker, process ${worker} (up since ${startedAt}).\n` +
          `Counter: ${counter}. Notes: ${notes.length}.\n\n` +
          `Every request with the same X-Session-ID reaches this same process,\n` +
          `so GET /counter keeps counting up; another session ID gets another process.\n` +
          `Try: GET /counter, POST /notes, GET /notes, GET /stream, WebSocket /ws.\n`,
      );
    case "GET /counter":
      counter++;
      // What `herd logs SESSION` shows of this session's worker.
      console.log(`counter is now ${counter}`);
      return json(res, 200, { worker, counter });
    case "GET /notes":
      return json(res, 200, { worker, notes });
    case "POST /notes": {
      const note = await readBody(req);
      notes.push(note);
      return json(res, 201, { worker, count: notes.length });
    }
    case "GET /health":
      return send(res, 200, "text/plain", "ok");
    case "GET /stream":
      return stream(req, res, url);
    default:
      return json(res, 404, { error: `no route for ${route}`, try: ["/", "/counter", "/notes"] });
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => json(res, 400, { error: err.message }));
});

let wss;
server.on("upgrade", async (req, socket, head) => {
  if (new URL(req.url ?? "/", "http://demo").pathname !== "/ws") {
    socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n");
    return;
  }
  if (!wss) {
    const { WebSocketServer } = await import("ws");
    wss ??= new WebSocketServer({ noServer: true });
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.send(`hello ${worker}`);
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
});

process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  for (const ws of wss?.clients ?? []) ws.terminate();
});

server.listen(port, "127.0.0.1", () => {
  console.log(`demo worker ${worker} listening on 127.0.0.1:${server.address().port}`);
});
