#!/usr/bin/env node
// A fake LLM server with Ollama's HTTP shape, for the "many concurrent chats on a few
// workers" scenario without downloading a model. Node built-ins only.
//
//   GET  /health      "ok"
//   GET  /api/tags    the one model it "serves"
//   POST /api/chat    {model, messages: [{role, content}], stream = true}
//                     streams NDJSON chunks {"model", "created_at", "message": {"role":
//                     "assistant", "content": "<token>"}, "done": false}, then a final
//                     {"done": true, "done_reason": "stop", ...counts}. stream: false → one JSON.
//
// State: the conversation context lives in this process, keyed by the X-Session-ID header
// herd forwards (one key when there is none). Each reply quotes the session's turn number and
// what the user said the turn before — visibly wrong if a session ever reached another
// worker. Contexts are capped (oldest dropped) so a reused worker does not grow without bound.
// Single-threaded Node: no locking.
//
// Env: PORT (or --port N), FAKE_TOKEN_MS (delay per token, default 20), FAKE_MODEL.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";

// Names this process in replies: a random id, not its pid (a contained worker runs in a PID
// namespace of its own, where every worker has the same pid).
const WORKER = randomBytes(4).toString("hex");

const portArg = process.argv.indexOf("--port");
const port = Number(portArg >= 0 ? process.argv[portArg + 1] : (process.env.PORT ?? 0));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error("fake-model: invalid port (give --port N or PORT=N)");
  process.exit(2);
}
const MODEL = process.env.FAKE_MODEL ?? "herd-fake:latest";
const TOKEN_MS = Number(process.env.FAKE_TOKEN_MS ?? 20);
const MAX_CONTEXTS = 256;

/** session key → user messages seen, oldest first. Map order = insertion order = LRU-ish. */
const contexts = new Map();

function contextFor(key) {
  let ctx = contexts.get(key);
  if (ctx) {
    contexts.delete(key); // re-insert: most recently used last
  } else {
    ctx = [];
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value);
  }
  contexts.set(key, ctx);
  return ctx;
}

function reply(ctx, said) {
  ctx.push(said);
  const turn = ctx.length;
  const before = turn > 1 ? ` Before that you said "${ctx[turn - 2]}".` : "";
  return `Turn ${turn} on worker ${WORKER}. You said "${said}".${before}`;
}

/** Splits text into tokens that concatenate back to it exactly (word + following space). */
const tokenize = (text) => text.match(/\S+\s*/g) ?? [];

function send(res, status, body) {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(body || "{}"));
      } catch (err) {
        reject(new Error(`request body is not JSON: ${err.message}`));
      }
    });
    req.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function chat(req, res) {
  const started = process.hrtime.bigint();
  const body = await readJson(req);
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const lastUser = messages.findLast((m) => m?.role === "user");
  if (typeof lastUser?.content !== "string") {
    return send(res, 400, { error: 'messages must include a {"role": "user", "content"} entry' });
  }
  const key = String(req.headers["x-session-id"] ?? "default");
  const tokens = tokenize(reply(contextFor(key), lastUser.content));
  const model = typeof body.model === "string" ? body.model : MODEL;
  const base = () => ({ model, created_at: new Date().toISOString() });
  const final = (content) => ({
    ...base(),
    message: { role: "assistant", content },
    done: true,
    done_reason: "stop",
    total_duration: Number(process.hrtime.bigint() - started),
    load_duration: 0,
    prompt_eval_count: messages.length,
    eval_count: tokens.length,
  });

  if (body.stream === false) {
    await sleep(TOKEN_MS * tokens.length);
    return send(res, 200, final(tokens.join("")));
  }
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  let gone = false;
  res.on("close", () => {
    gone = true;
  });
  for (const token of tokens) {
    if (gone) return;
    res.write(
      `${JSON.stringify({ ...base(), message: { role: "assistant", content: token }, done: false })}\n`,
    );
    await sleep(TOKEN_MS);
  }
  res.end(`${JSON.stringify(final(""))}\n`);
}

async function handle(req, res) {
  const route = `${req.method} ${new URL(req.url ?? "/", "http://model").pathname}`;
  switch (route) {
    case "GET /health":
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end("ok");
    case "GET /api/tags":
      return send(res, 200, {
        models: [
          {
            name: MODEL,
            model: MODEL,
            modified_at: new Date(0).toISOString(),
            size: 0,
            digest: "0".repeat(64),
            details: {
              format: "fake",
              family: "herd",
              parameter_size: "0B",
              quantization_level: "none",
            },
          },
        ],
      });
    case "POST /api/chat":
      return chat(req, res);
    default:
      return send(res, 404, { error: `no route for ${route}` });
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    if (!res.headersSent) send(res, 400, { error: err.message });
    else res.destroy(err);
  });
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
server.listen(port, "127.0.0.1", () => {
  console.log(`ready ${server.address().port}`);
});
