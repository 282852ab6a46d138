// Regression for issue 9 item 1, last part: a page opened as /s/{id}/…?herd_token=… makes the
// browser send that URL as `Referer` on its next requests; herd used to forward it, handing the
// session's token to the worker. Now herd's parameters leave the Referer (the rest stays as
// sent), and no part of what the worker sees carries the token.
import { afterEach, describe, expect, it } from "vitest";
import { stackTracker, startStack } from "../dataplane/stack.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

describe("Referer towards the worker", () => {
  it("loses herd_token and herd_session, keeps the rest, and no header carries the token", async () => {
    const s = track(await startStack([{}], { tokens: true }));
    const { token } = await s.herd.acquire("p0", "secure");
    const page = `${s.url}/s/secure/app/page?tab=2&herd_token=${token}&herd_session=secure`;
    const res = await fetch(`${s.url}/s/secure/echo?herd_token=${token}`, {
      headers: {
        Referer: `${page}#top`,
        Origin: s.url,
        cookie: `herd_token=${token}; app=1`,
        "X-Herd-Token": token,
      },
    });
    expect(res.status).toBe(200);
    const echoed = (await res.json()) as { url: string; headers: Record<string, string> };
    expect(echoed.headers.referer).toBe(`${s.url}/s/secure/app/page?tab=2#top`);
    expect(echoed.headers.origin).toBe(s.url);
    expect(echoed.headers.cookie).toBe("app=1");
    expect(echoed.url).toBe("/echo");
    expect(JSON.stringify(echoed)).not.toContain(token);
  });
});
