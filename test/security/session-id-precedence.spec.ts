// The four session-id sources through the real data plane, in DESIGN's order: header, path
// prefix /s/{id}/, query herd_session, cookie herd_session — what the request names beats the
// ambient cookie (issue 9 item 1: a planted cookie used to outrank the path). Each source alone
// routes; each one loses to every source before it.
import { afterEach, describe, expect, it } from "vitest";
import { type Stack, stackTracker, startStack, whoami } from "../dataplane/stack.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

interface Echo {
  pid: number;
  url: string;
  headers: Record<string, string>;
}

async function echo(s: Stack, path: string, headers: Record<string, string> = {}): Promise<Echo> {
  const res = await fetch(`${s.url}${path}`, { headers });
  expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(200);
  return (await res.json()) as Echo;
}

/** One session per source, each on its own worker: a pid says which source won. */
async function fourSessions(s: Stack): Promise<Record<"h" | "p" | "q" | "c", number>> {
  const pids: Record<string, number> = {};
  for (const id of ["h", "p", "q", "c"]) {
    pids[id] = (await whoami(s.url, { headers: { "X-Session-ID": `src-${id}` } })).pid;
  }
  expect(new Set(Object.values(pids)).size).toBe(4);
  return pids as Record<"h" | "p" | "q" | "c", number>;
}

describe("session id sources", () => {
  it("each routes alone, and the worker sees none of herd's parts", async () => {
    const s = track(await startStack());
    const pid = await fourSessions(s);
    const header = await echo(s, "/echo?x=1", { "X-Session-ID": "src-h" });
    expect(header).toMatchObject({ pid: pid.h, url: "/echo?x=1" });
    const path = await echo(s, "/s/src-p/echo/deep?x=1");
    expect(path).toMatchObject({ pid: pid.p, url: "/echo/deep?x=1" });
    const query = await echo(s, "/echo?herd_session=src-q&x=1");
    expect(query).toMatchObject({ pid: pid.q, url: "/echo?x=1" });
    const cookie = await echo(s, "/echo", { cookie: "herd_session=src-c; app=1" });
    expect(cookie).toMatchObject({ pid: pid.c, url: "/echo" });
    expect(cookie.headers.cookie).toBe("app=1");
  });

  it("win in the order header, path, query, cookie", async () => {
    const s = track(await startStack());
    const pid = await fourSessions(s);
    const cookie = { cookie: "herd_session=src-c" };
    // The header wins; a prefix naming another session is then the worker's own path, kept
    // (the fixture has no /s/… route: its 404 names the path and its pid).
    const all = await fetch(`${s.url}/s/src-p/echo?herd_session=src-q`, {
      headers: { ...cookie, "X-Session-ID": "src-h" },
    });
    expect(all.status).toBe(404);
    expect(await all.json()).toEqual({ error: "no route GET /s/src-p/echo", pid: pid.h });
    const noHeader = await echo(s, "/s/src-p/echo?herd_session=src-q", cookie);
    expect(noHeader).toMatchObject({ pid: pid.p, url: "/echo" });
    const noPath = await echo(s, "/echo?herd_session=src-q", cookie);
    expect(noPath).toMatchObject({ pid: pid.q, url: "/echo" });
  });

  it("strip a prefix that names the header's own session", async () => {
    const s = track(await startStack());
    const pid = await fourSessions(s);
    const both = await echo(s, "/s/src-h/echo", { "X-Session-ID": "src-h" });
    expect(both).toMatchObject({ pid: pid.h, url: "/echo" });
  });
});
