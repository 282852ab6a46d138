import { spawn } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ownsListener, treeListeners, treePids } from "./listener-owner.ts";

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function listen(host: string): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, host, () => {
      servers.push(server);
      resolve((server.address() as { port: number }).port);
    });
  });
}

describe("ownsListener", () => {
  it("tells our listener from a stranger's, on IPv4 and IPv6", async () => {
    for (const host of ["127.0.0.1", "::1"]) {
      const port = await listen(host);
      expect(await ownsListener(() => [process.pid], port)).toBe("mine");
      expect(await ownsListener(() => [process.ppid], port)).toBe("stranger");
    }
  });

  it("finds a listener among many, with established connections listed after them", async () => {
    // The table is read only up to the end of its listeners, in chunks: 60 listeners span
    // several chunks, and the connections fill the part that follows.
    const ports = await Promise.all(Array.from({ length: 60 }, () => listen("127.0.0.1")));
    const clients = await Promise.all(
      ports.slice(0, 20).map(
        (port) =>
          new Promise<Socket>((resolve) => {
            const c = connect(port, "127.0.0.1", () => resolve(c));
          }),
      ),
    );
    try {
      for (const port of ports) {
        expect(await ownsListener(() => [process.pid], port)).toBe("mine");
      }
      expect(await ownsListener(() => [process.ppid], ports.at(-1)!)).toBe("stranger");
    } finally {
      for (const c of clients) c.destroy();
    }
  });

  it("says none, not stranger, when nothing listens on the port", async () => {
    const port = await listen("127.0.0.1");
    servers.pop()!.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(await ownsListener(() => [process.pid], port)).toBe("none");
  });
});

describe("treePids", () => {
  it("finds a process's descendants", async () => {
    const child = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore", detached: true });
    try {
      let pids: number[] = [];
      for (let i = 0; i < 100 && pids.length < 3; i++) {
        await new Promise((r) => setTimeout(r, 10));
        pids = treePids(process.pid);
      }
      expect(pids).toContain(child.pid);
      expect(pids.length).toBeGreaterThanOrEqual(3);
    } finally {
      process.kill(-child.pid!, "SIGKILL"); // the group: sh and its sleep
    }
  });
});

describe("treeListeners", () => {
  it("lists every address the given processes listen on, IPv4 and IPv6, and nobody else's", async () => {
    const v4 = await listen("127.0.0.1");
    const v6 = await listen("::1");
    const any = await listen("0.0.0.0");
    const mine = treeListeners([process.pid]) ?? [];
    expect(mine).toEqual(
      expect.arrayContaining([`127.0.0.1:${v4}`, `[::1]:${v6}`, `0.0.0.0:${any}`]),
    );
    // A process that listens nowhere: none of ours are its.
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      expect(treeListeners([child.pid!])).toEqual([]);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
