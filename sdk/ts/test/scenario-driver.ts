// The TypeScript driver of the SDK scenario suite (scenarios.spec.ts). Each SDK has a driver
// taking the same steps through its own public API and printing the same JSON lines, so one
// spec checks all three against a live daemon:
//   tsx scenario-driver.ts <step> <controlUrl> <pool>
// Steps: identity, errors, watch, logs-usage, hold (prints {"held": ...}, then waits to be killed),
// tenant-key (a client with the key in HERD_SCENARIO_KEY: an acquired and a held session each
// send their `headers` to the recorder at HERD_SCENARIO_RECORDER, path /ts and /ts-held, and
// one request through the data plane, which reached the session's worker: "reached").
import { createHerdClient, HerdClientError, SessionEventType } from "../src/index.ts";

const [step, baseUrl, pool] = process.argv.slice(2);
if (step === undefined || baseUrl === undefined || pool === undefined) {
  console.error("usage: scenario-driver.ts <identity|errors|watch|hold> <controlUrl> <pool>");
  process.exit(2);
}
const herd = createHerdClient({ baseUrl, timeoutMs: 30_000 });
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
const errorCode = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: unknown) => (e instanceof HerdClientError ? e.codeName : `untyped: ${String(e)}`),
  );

switch (step) {
  case "tenant-key": {
    const keyed = createHerdClient({
      baseUrl,
      tenantKey: process.env.HERD_SCENARIO_KEY!,
      timeoutMs: 30_000,
    });
    const recorder = process.env.HERD_SCENARIO_RECORDER!;
    await using s = await keyed.acquire(pool);
    await (await fetch(`${recorder}/ts`, { headers: s.headers })).text();
    const who = await fetch(`${s.proxyUrl}/whoami`, { headers: s.headers });
    const reached = ((await who.json()) as { pid: number }).pid === s.workerPid;
    const held = await keyed.hold(pool);
    await (await fetch(`${recorder}/ts-held`, { headers: held.headers })).text();
    await held.release();
    out({ sessions: { ts: s.id, "ts-held": held.id }, reached });
    break;
  }
  case "identity": {
    await using s = await herd.acquire(pool);
    const pids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${s.proxyUrl}/whoami`, { headers: s.headers });
      pids.push(((await r.json()) as { pid: number }).pid);
    }
    out({ session: s.id, workerPid: s.workerPid, pids });
    break;
  }
  case "errors":
    out({
      unknownPool: await errorCode(herd.acquire("no-such-pool")),
      invalidId: await errorCode(herd.acquire(pool, { sessionId: "bad id!" })),
    });
    break;
  case "watch": {
    const stop = new AbortController();
    const ids = [`ts-a-${process.pid}`, `ts-b-${process.pid}`];
    const events: [string, string][] = [];
    for await (const ev of herd.watch({ pool, snapshot: true, signal: stop.signal })) {
      if (ev.type === SessionEventType.SNAPSHOT_COMPLETE) {
        const a = await herd.acquire(pool, { sessionId: ids[0]! });
        await a.release();
        const b = await herd.acquire(pool, { sessionId: ids[1]! });
        await fetch(`${b.proxyUrl}/control/crash?code=3`, { method: "POST", headers: b.headers })
          .then((r) => r.body?.cancel())
          .catch(() => {}); // the worker dies mid-request: no answer expected
      } else if (ids.includes(ev.sessionId)) {
        events.push([SessionEventType[ev.type], ev.sessionId === ids[0] ? "a" : "b"]);
        if (ev.type === SessionEventType.SESSION_LOST) break;
      }
    }
    stop.abort();
    out({ events });
    break;
  }
  case "logs-usage": {
    await using s = await herd.acquire(pool);
    const post = (line: string) =>
      fetch(`${s.proxyUrl}/control/stderr?line=${line}`, { method: "POST", headers: s.headers });
    await (await fetch(`${s.proxyUrl}/whoami`, { headers: s.headers })).arrayBuffer();
    await (await post("ts-before")).arrayBuffer();
    let held = "";
    for await (const piece of herd.tailLogs(s.id)) held += Buffer.from(piece).toString();
    let seen = "";
    let asked = false;
    for await (const piece of herd.tailLogs(s.id, { follow: true })) {
      seen += Buffer.from(piece).toString();
      if (seen.includes("ts-before\n") && !asked) {
        asked = true;
        await (await post("ts-after")).arrayBuffer();
      }
      if (seen.includes("ts-after\n")) break;
    }
    const usage = await herd.usage(s.id);
    out({
      logged: held.includes("ts-before\n"),
      followed: seen.includes("ts-after\n"),
      rx: Number(usage?.rxBytes),
      tx: Number(usage?.txBytes),
      cpuKnown: usage?.cpuSeconds !== undefined,
    });
    break;
  }
  case "hold": {
    const held = await herd.hold(pool);
    out({ held: held.id, workerPid: held.workerPid });
    await new Promise(() => {}); // until killed
    break;
  }
  default:
    console.error(`unknown step ${step}`);
    process.exit(2);
}
