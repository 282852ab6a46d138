// Regression for issue 9 item 1, cookie takeover: an attacker's worker answers
// `Set-Cookie: herd_session=attacker; Path=/` (and herd_token=…). Before the fix herd relayed it,
// and since the cookie outranked the /s/{id}/ prefix, the victim's next request to
// /s/victim/private — carrying the planted cookie and the victim's own app cookies — was served
// by the attacker's worker. Now no herd_* cookie reaches the client over plain HTTP, a WebSocket
// 101 or a declined upgrade, and a planted cookie cannot override the path anyway.
import type { IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { stackTracker, startStack, whoami } from "../dataplane/stack.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

// What a hostile worker tries to plant; only its own app cookie may reach the client.
const PLANTED = [
  "herd_session=attacker; Path=/",
  "herd_token=stolen-or-forged; Path=/; HttpOnly",
  "HERD_Session=attacker",
  " herd_session =attacker",
  "app=1; Path=/",
];
const query = PLANTED.map((line) => `c=${encodeURIComponent(line)}`).join("&");

function wsUrl(httpUrl: string, path: string): string {
  return `${httpUrl.replace(/^http/, "ws")}${path}`;
}

describe("a worker cannot set herd's cookies", () => {
  it("over plain HTTP", async () => {
    const s = track(await startStack());
    const res = await fetch(`${s.url}/s/attacker/control/set-cookie?${query}`);
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual(["app=1; Path=/"]);
  });

  it("in a WebSocket handshake", async () => {
    const s = track(await startStack());
    const ws = new WebSocket(wsUrl(s.url, `/s/attacker/ws?${query}`));
    // Listening from the start: the worker's hello may arrive in the same read as the 101.
    const hello = new Promise<string>((resolve) => ws.once("message", (d) => resolve(`${d}`)));
    try {
      const upgrade = await new Promise<IncomingMessage>((resolve, reject) => {
        ws.once("upgrade", resolve);
        ws.once("error", reject);
      });
      expect(upgrade.headers["set-cookie"]).toEqual(["app=1; Path=/"]);
      expect(await hello).toMatch(/^hello \d+$/);
    } finally {
      ws.terminate();
    }
  });

  it("in the answer of a worker that declines an upgrade", async () => {
    const s = track(await startStack());
    const ws = new WebSocket(wsUrl(s.url, `/s/attacker/control/set-cookie?${query}`));
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      ws.once("unexpected-response", (_req, response) => resolve(response));
      ws.once("upgrade", () => reject(new Error("the worker was expected to decline")));
      ws.once("error", reject);
    });
    ws.terminate();
    expect(res.statusCode).toBe(403);
    expect(res.headers["set-cookie"]).toEqual(["app=1; Path=/"]);
    res.resume();
  });
});

describe("a planted herd_session cookie", () => {
  it("does not take the victim's /s/victim/ request, nor see the victim's cookies", async () => {
    const s = track(await startStack());
    const attacker = await whoami(s.url, { headers: { "X-Session-ID": "attacker" } });
    const victim = await whoami(s.url, { headers: { "X-Session-ID": "victim" } });
    expect(attacker.pid).not.toBe(victim.pid);

    const res = await fetch(`${s.url}/s/victim/echo/private`, {
      headers: { cookie: "herd_session=attacker; victim_app_session=s3cret" },
    });
    expect(res.status).toBe(200);
    const echoed = (await res.json()) as { pid: number; url: string; headers: { cookie?: string } };
    expect(echoed.pid).toBe(victim.pid);
    expect(echoed.url).toBe("/echo/private");
    expect(echoed.headers.cookie).toBe("victim_app_session=s3cret");
  });
});
