import { afterEach, describe, expect, it } from "vitest";
import { BodyDeadline } from "./body-deadline.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live: BodyDeadline[] = [];
afterEach(() => {
  for (const d of live.splice(0)) d.stop();
});

function deadline(timeoutMs: number, minRate: number, blocked = () => false) {
  const state = { expired: false };
  const d = new BodyDeadline({ timeoutMs, minRate }, blocked, () => {
    state.expired = true;
  });
  live.push(d);
  return { d, state };
}

async function until(check: () => boolean, withinMs = 15_000): Promise<boolean> {
  const end = Date.now() + withinMs;
  while (!check() && Date.now() < end) await sleep(20);
  return check();
}

describe("the body deadline", () => {
  it("expires once when no byte comes", async () => {
    const { d, state } = deadline(50, 500);
    d.start();
    expect(await until(() => state.expired)).toBe(true);
  });

  it("moves one second further per min-rate bytes received", async () => {
    const { d, state } = deadline(50, 1000);
    d.start();
    d.received(20_000); // 20 s more
    await sleep(500);
    expect(state.expired).toBe(false);
  });

  it("does not count time blocked behind the worker, and expires once unblocked", async () => {
    let blocked = true;
    const { d, state } = deadline(50, 500, () => blocked);
    d.start();
    await sleep(500);
    expect(state.expired).toBe(false);
    blocked = false;
    expect(await until(() => state.expired)).toBe(true);
  });

  it("never fires after stop, and not at all with a zero timeout", async () => {
    const stopped = deadline(30, 500);
    stopped.d.start();
    stopped.d.stop();
    const off = deadline(0, 500);
    off.d.start();
    await sleep(300);
    expect(stopped.state.expired).toBe(false);
    expect(off.state.expired).toBe(false);
  });
});
