// examples/llm-stream through the real daemon: an Ollama-shaped streaming chat API whose
// conversation context lives in the worker, the seeds' scenario of 200 concurrent chats on a
// pool of 10 model processes (every one served in full, none dropped), and the Python httpx
// client (client.py) streaming two turns through a held session.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createHerdClient } from "../../sdk/ts/src/index.ts";
import { runCaptured } from "../../test/helpers/captured.ts";
import { REPO_ROOT } from "../../test/helpers/daemon.ts";
import { daemonPerTest } from "../../test/helpers/daemon-per-test.ts";

const CONFIG = new URL("./herd.yaml", import.meta.url).pathname;
const PYTHON = join(REPO_ROOT, ".venv/bin/python");
const PY_CLIENT = new URL("./client.py", import.meta.url).pathname;
/** The fake model's pause after each token, as this example's herd.yaml sets it. */
const TOKEN_MS = Number(
  (parse(readFileSync(CONFIG, "utf8")) as { workers: { llm: { env: Record<string, string> } } })
    .workers.llm.env.FAKE_TOKEN_MS,
);

const ctx = daemonPerTest(CONFIG);

interface Chunk {
  message: { role: string; content: string };
  done: boolean;
  eval_count?: number;
}

/** One streamed chat turn: the reply text, the chunks, and whether the stream ended properly. */
async function chat(headers: Record<string, string>, content: string) {
  const res = await fetch(`${ctx.daemon.dataUrl}/api/chat`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ model: "herd-fake", messages: [{ role: "user", content }] }),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/x-ndjson");
  const lines = (await res.text()).split("\n").filter(Boolean);
  const chunks = lines.map((l) => JSON.parse(l) as Chunk);
  const last = chunks.at(-1)!;
  const tokens = chunks.filter((c) => !c.done);
  return {
    text: tokens.map((c) => c.message.content).join(""),
    complete: last.done && last.eval_count === tokens.length,
  };
}

describe("examples/llm-stream", () => {
  it("lists its model and keeps each session's conversation in its worker", async () => {
    const tags = (await (
      await fetch(`${ctx.daemon.dataUrl}/api/tags`, { headers: { "X-Session-ID": "ann" } })
    ).json()) as { models: { name: string }[] };
    expect(tags.models.map((m) => m.name)).toEqual(["herd-fake:latest"]);

    const a1 = await chat({ "X-Session-ID": "ann" }, "my name is Ann");
    const b1 = await chat({ "X-Session-ID": "ben" }, "my name is Ben");
    const a2 = await chat({ "X-Session-ID": "ann" }, "what is my name?");
    expect(a1.complete && b1.complete && a2.complete).toBe(true);
    expect(a1.text).toMatch(/^Turn 1 on worker [0-9a-f]+\. You said "my name is Ann"\.$/);
    expect(b1.text).toMatch(/^Turn 1 /);
    expect(a2.text).toContain("Turn 2 on worker");
    expect(a2.text).toContain('Before that you said "my name is Ann".');
  });

  it("serves 200 concurrent chat sessions on 10 workers, none dropped", {
    timeout: 180_000,
  }, async () => {
    const herd = createHerdClient({ baseUrl: ctx.daemon.controlUrl });
    const pids = new Set<number>();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, async (_, i) => {
        const session = await herd.acquire("llm", { sessionId: `chat-${i}`, waitMs: 150_000 });
        try {
          pids.add(session.workerPid);
          const reply = await chat(session.headers, `question ${i}`);
          if (!reply.complete) throw new Error(`chat ${i}: stream ended early`);
          if (!reply.text.includes(`You said "question ${i}".`)) {
            throw new Error(`chat ${i}: wrong reply ${JSON.stringify(reply.text)}`);
          }
          return reply;
        } finally {
          await session.release();
        }
      }),
    );
    const failed = outcomes.filter((o) => o.status === "rejected");
    expect(failed.map((f) => String((f as PromiseRejectedResult).reason)).slice(0, 5)).toEqual([]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(200);
    // The pool never grew past max, so the 200 really shared 10 processes.
    expect(pids.size).toBeLessThanOrEqual(10);
    expect(pids.size).toBeGreaterThan(1);
    const stats = await herd.stats({ pool: "llm" });
    expect(stats.pools[0]).toMatchObject({ name: "llm", max: 10, sessions: 0, queued: 0 });
  });

  it("streams to the Python httpx client, which holds its session and is remembered by its worker", {
    timeout: 120_000,
  }, async () => {
    // A long prompt makes long replies (the fake quotes it back), so a stream lasts about a second.
    const words = Array.from({ length: 40 }, (_, i) => `word${i + 1}`).join(" ");
    const prompt = `my name is Ann and here are forty words: ${words}`;
    const {
      code,
      stdout: out,
      stderr: err,
    } = await runCaptured(PYTHON, [PY_CLIENT, "--control", ctx.daemon.controlUrl, prompt], {
      env: ctx.leak.env,
    });
    expect(code, `client.py failed (examples/llm-stream/setup.sh run?):\n${err}`).toBe(0);

    const summary = JSON.parse(out.trimEnd().split("\n").at(-1)!) as {
      session: string;
      worker_pid: number;
      worker: string;
      turns: { reply: string; token_times: number[]; done_time: number }[];
    };
    const [first, second] = summary.turns;
    // Checked here too, not only by the client: both turns on the session's own worker, and the
    // second, sent without any history, quotes the first — the context stayed in that process.
    // The worker names itself by a random id (its pid is renumbered by its PID namespace).
    const id = summary.worker;
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(first!.reply).toBe(`Turn 1 on worker ${id}. You said "${prompt}".`);
    expect(second!.reply).toBe(
      `Turn 2 on worker ${id}. You said "What did I just tell you?". Before that you said "${prompt}".`,
    );
    expect(out).toContain(`${first!.reply}\n`);
    expect(out).toContain(`${second!.reply}\n`);

    // Streaming: the worker writes each token at least TOKEN_MS after the one before, so tokens
    // that reach the client as they are written arrive spread over (n-1)·TOKEN_MS; a response
    // buffered anywhere on the way arrives in one piece. A quarter of that span is the bar, so
    // only a stall of most of a second in the client could fail a working stream.
    expect(TOKEN_MS).toBeGreaterThanOrEqual(10);
    for (const turn of summary.turns) {
      const times = turn.token_times;
      expect(times).toHaveLength(turn.reply.match(/\S+\s*/g)!.length);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      const written = ((times.length - 1) * TOKEN_MS) / 1000;
      expect(written).toBeGreaterThan(0.5);
      expect(times.at(-1)! - times[0]!).toBeGreaterThan(written / 4);
      expect(turn.done_time).toBeGreaterThanOrEqual(times.at(-1)!);
    }

    // The client has exited: its hold is over and the session released (the worker, reuse:
    // true, goes back to the pool; the daemon helper checks nothing leaked at shutdown).
    const herd = createHerdClient({ baseUrl: ctx.daemon.controlUrl });
    expect(await herd.sessions()).toEqual([]);
    const stats = await herd.stats({ pool: "llm" });
    expect(stats.pools[0]).toMatchObject({ name: "llm", sessions: 0 });
  });
});
