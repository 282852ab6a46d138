#!/usr/bin/env node
// A tenant's worker that tries, from the inside, everything `isolation` is meant to stop. A plain
// Node HTTP server on $PORT (like test/fixtures/worker.mjs); every attempt answers 200 with
// {ok, ...} so a spec can assert what worked and what did not.
//
//   GET  /health                       200 "ok"
//   GET  /id                           {uid, gid, pid, home, tmp, port, addresses (IPv4, not lo)}
//   GET  /connect?host=H&port=N        a TCP connect: {ok, error}
//   GET  /connect?path=P               a Unix-socket connect: {ok, error}
//   GET  /signal?pid=N&sig=0           process.kill(N, sig): {ok, error}
//   GET  /read?path=P                  {ok, content (first 4 KiB), error}
//   POST /write?path=P&text=T&mode=600 writes the file: {ok, error}
//   GET  /run?argv=["unshare","-Ur","id"] runs a program: {ok, code, output}
//   GET  /statfs?path=P                {ok, bytes (the file system's size)}
//   GET  /post?url=U&body=B            POSTs JSON B to U: {ok, status, body}
import { execFileSync } from "node:child_process";
import { readFileSync, statfsSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";

function tryConnect(options) {
  return new Promise((resolve) => {
    const socket = connect({ ...options, timeout: 2_000 });
    const done = (result) => {
      socket.destroy();
      resolve(result);
    };
    socket.once("connect", () => done({ ok: true }));
    socket.once("timeout", () => done({ ok: false, error: "timeout" }));
    socket.once("error", (err) => done({ ok: false, error: err.code ?? err.message }));
  });
}

function attempt(fn) {
  try {
    return { ok: true, ...fn() };
  } catch (err) {
    return { ok: false, error: err.code ?? err.message };
  }
}

function runArgs(json) {
  const [program, ...args] = JSON.parse(json);
  return [program, args];
}

async function handle(url) {
  const q = url.searchParams;
  switch (url.pathname) {
    case "/health":
      return "ok";
    case "/id":
      return {
        uid: process.getuid(),
        gid: process.getgid(),
        pid: process.pid,
        home: process.env.HOME,
        tmp: tmpdir(),
        port: Number(process.env.PORT),
        addresses: Object.values(networkInterfaces())
          .flat()
          .filter((a) => a.family === "IPv4" && !a.internal)
          .map((a) => a.address),
      };
    case "/connect":
      return q.has("path")
        ? tryConnect({ path: q.get("path") })
        : tryConnect({ host: q.get("host") ?? "127.0.0.1", port: Number(q.get("port")) });
    case "/signal":
      return attempt(() => {
        process.kill(Number(q.get("pid")), Number(q.get("sig") ?? 0));
        return {};
      });
    case "/read":
      return attempt(() => ({ content: readFileSync(q.get("path"), "utf8").slice(0, 4096) }));
    case "/write":
      return attempt(() => {
        writeFileSync(q.get("path"), q.get("text") ?? "", {
          mode: Number.parseInt(q.get("mode") ?? "600", 8),
        });
        return {};
      });
    case "/run":
      try {
        const output = execFileSync(...runArgs(q.get("argv")), { stdio: "pipe", timeout: 10_000 });
        return { ok: true, code: 0, output: String(output) };
      } catch (err) {
        return { ok: false, code: err.status ?? null, output: String(err.stderr ?? err.message) };
      }
    case "/post":
      try {
        const res = await fetch(q.get("url"), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: q.get("body") ?? "{}",
          signal: AbortSignal.timeout(5_000),
        });
        return { ok: true, status: res.status, body: await res.text() };
      } catch (err) {
        return { ok: false, error: String(err.cause?.code ?? err.message) };
      }
    case "/statfs":
      return attempt(() => {
        const s = statfsSync(q.get("path"));
        return { bytes: s.blocks * s.bsize };
      });
    default:
      return undefined;
  }
}

createServer(async (req, res) => {
  const result = await handle(new URL(req.url ?? "/", "http://worker"));
  if (result === undefined) {
    res.writeHead(404).end();
    return;
  }
  const body = typeof result === "string" ? result : JSON.stringify(result);
  res.writeHead(200, { "content-type": "application/json" }).end(body);
}).listen(Number(process.env.PORT), "127.0.0.1");
