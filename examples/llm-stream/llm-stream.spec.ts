// examples/llm-stream through the real daemon: an Ollama-shaped streaming chat API whose
// conversation context lives in the worker, and the seeds' scenario of 200 concurrent chats
// on a pool of 10 model processes: every one served in full, none dropped.
import { describe, expect, it } from "vitest";
import { createHerdClient } from "../../sdk/ts/src/index.ts";
import { daemonPerTest } from "../../test/helpers/daemon-per-test.ts";

const CONFIG = new URL("./herd.yaml", import.meta.url).pathname;

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
    expect(a1.text).toMatch(/^Turn 1 on worker \d+\. You said "my name is Ann"\.$/);
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
});
