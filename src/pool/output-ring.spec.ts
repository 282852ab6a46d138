import { describe, expect, it } from "vitest";
import { OutputRing, sessionLogs } from "./output-ring.ts";

describe("OutputRing", () => {
  it("keeps the last `capacity` bytes whatever is written, across growth and wrap-around", () => {
    const ring = new OutputRing(10_000);
    let all = "";
    for (let i = 0; i < 3_000; i++) {
      const chunk = `line ${i} ${"x".repeat(i % 37)}\n`;
      all += chunk;
      ring.write(Buffer.from(chunk));
      expect(ring.read(0).toString()).toBe(all.slice(-10_000));
    }
    expect(ring.end).toBe(Buffer.byteLength(all));
    expect(ring.read(ring.end - 5).toString()).toBe(all.slice(-5));
  });

  it("keeps the tail of a chunk larger than the ring", () => {
    const ring = new OutputRing(4_096);
    ring.write(Buffer.from("a".repeat(100)));
    const big = Buffer.from(`${"b".repeat(10_000)}END`);
    ring.write(big);
    expect(ring.read(0).toString()).toBe(big.subarray(-4_096).toString());
    expect(ring.end).toBe(10_103);
  });

  it("a session's view starts where the session began and closes when it ends", () => {
    const ring = new OutputRing(1 << 16);
    ring.write(Buffer.from("previous tenant's secret\n"));
    const ended = new AbortController();
    const logs = sessionLogs(ring, ring.end, ended.signal);
    ring.write(Buffer.from("mine\n"));
    const followed: string[] = [];
    logs.follow((chunk) => followed.push(chunk.toString()));
    ring.write(Buffer.from("later\n"));
    expect(logs.read().toString()).toBe("mine\nlater\n");
    expect(followed).toEqual(["later\n"]);
    ended.abort();
    ring.write(Buffer.from("next tenant's secret\n"));
    expect(followed).toEqual(["later\n"]);
    expect(logs.read().length).toBe(0);
  });
});
