import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { connect, createServer, type Server } from "node:net";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { cRelay } from "../bench-tools.ts";

const started: ChildProcess[] = [];
const servers: Server[] = [];

afterEach(async () => {
  for (const relay of started.splice(0)) {
    if (relay.exitCode === null && relay.signalCode === null) {
      relay.stdin?.end(); // the relay exits when its stdin closes
      const exited = once(relay, "exit");
      const timer = setTimeout(() => relay.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    expect(relay.exitCode !== null || relay.signalCode !== null).toBe(true);
  }
  for (const server of servers.splice(0)) server.close();
});

async function startRelay(target: number): Promise<number> {
  const relay = spawn(cRelay(), [String(target)], { stdio: ["pipe", "pipe", "inherit"] });
  started.push(relay);
  const [line] = (await once(createInterface({ input: relay.stdout! }), "line")) as [string];
  return Number(line.replace("ready ", ""));
}

describe("the bench's C relay", () => {
  it("keeps every byte, in order, when both directions back up at once", async () => {
    // An echo worker: what the client sends comes back; with the client not reading, the relay's
    // write to the client comes up short, then the echo's, then the relay's write to it.
    const echo = createServer((s) => s.pipe(s));
    servers.push(echo);
    echo.listen(0, "127.0.0.1");
    await once(echo, "listening");
    const port = await startRelay((echo.address() as { port: number }).port);
    const payload = randomBytes(16 * 1024 * 1024);
    const client = connect(port, "127.0.0.1");
    await once(client, "connect");
    client.pause();
    client.write(payload);
    await new Promise((r) => setTimeout(r, 500)); // let every buffer on the way fill up
    const received: Buffer[] = [];
    let length = 0;
    const all = new Promise<void>((resolve, reject) => {
      // Generous: a relay that dropped a write interest stalls for good, not for a while.
      const timer = setTimeout(() => reject(new Error(`stalled at ${length} bytes`)), 60_000);
      client.on("data", (chunk: Buffer) => {
        received.push(chunk);
        length += chunk.length;
        if (length >= payload.length) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    client.resume();
    await all;
    client.destroy();
    expect(Buffer.concat(received).equals(payload)).toBe(true);
  }, 90_000);
});
