import { PassThrough } from "node:stream";
import { setImmediate as tick } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { WorkerOutput } from "./worker-output.ts";

describe("WorkerOutput", () => {
  it("reads a flood at its budget: paused once a window's bytes are spent, resumed after", async () => {
    const out = new WorkerOutput(1 << 20, 160 * 1024); // 16 KiB per 100 ms window
    const pipe = new PassThrough();
    const seen: number[] = [];
    out.attach(pipe, (chunk) => seen.push(chunk.length));
    for (let i = 0; i < 10; i++) pipe.write(Buffer.alloc(16 * 1024, i));
    await tick();
    await tick();
    // Each chunk spends a window's budget: one a window, the rest waits in the pipe (all ten
    // at once would take a stall of nine windows between two ticks).
    expect(out.ring.end).toBeLessThan(160 * 1024);
    const deadline = Date.now() + 30_000;
    while (out.ring.end < 160 * 1024 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(out.ring.end).toBe(160 * 1024);
    expect(seen).toHaveLength(10);
    out.detach();
  });
});
