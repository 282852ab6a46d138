// Readiness and health probes. Readiness must not add latency: the first probe goes out at
// once and retries back off from ~1 ms to 5 ms (25 ms after the first second), and any output
// from the worker triggers an immediate probe, because servers usually log as they start listening.

import { request } from "node:http";
import { connect } from "node:net";
import type { ReadyCheck } from "../core/index.ts";
import { netConnectOptions, type WorkerEndpoint } from "../core/index.ts";

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/**
 * One HTTP GET; any status below 500 means "serving". `onConnect` fires once the connection is
 * accepted, before the answer: a fresh worker's first answer takes milliseconds (its lazy
 * initialisation), which the caller can use.
 */
export function probeHttp(
  endpoint: WorkerEndpoint,
  path: string,
  timeoutMs: number,
  onConnect?: () => void,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = request(
      { ...endpoint, path, method: "GET", agent: false, timeout: timeoutMs },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(
          status < 500 ? { ok: true } : { ok: false, reason: `GET ${path} returned ${status}` },
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) => resolve({ ok: false, reason: `GET ${path}: ${err.message}` }));
    if (onConnect) req.once("socket", (socket) => socket.once("connect", onConnect));
    req.end();
  });
}

export function probeTcp(endpoint: WorkerEndpoint, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ ...netConnectOptions(endpoint), timeout: timeoutMs });
    socket.once("connect", () => {
      socket.destroy();
      resolve({ ok: true });
    });
    socket.once("timeout", () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once("error", (err) => resolve({ ok: false, reason: `connect: ${err.message}` }));
  });
}

export interface ReadyWaiter {
  /** Resolves when ready; rejects with the last probe failure when the signal aborts. */
  ready: Promise<void>;
  /** Feed every complete output line of the worker. */
  onLine(line: string): void;
}

/**
 * Probes until ready. `onListening` fires once, at the first accepted connection: from then on
 * something listens on the port, though an HTTP check may still be waiting for its answer.
 */
export function waitReady(
  check: ReadyCheck,
  endpoint: WorkerEndpoint,
  signal: AbortSignal,
  onListening?: () => void,
  tcpProbe: () => Promise<ProbeResult> = () => probeTcp(endpoint, 1_000),
): ReadyWaiter {
  let listening = false;
  const connected = () => {
    if (listening) return;
    listening = true;
    onListening?.();
  };
  let nudge: (() => void) | undefined;
  let matched: (() => void) | undefined;
  const pattern = check.kind === "stdout" ? new RegExp(check.pattern) : undefined;
  const onLine = (line: string) => {
    if (pattern?.test(line)) matched?.();
    nudge?.();
  };
  const ready = (async () => {
    if (check.kind === "stdout") {
      await new Promise<void>((resolve, reject) => {
        matched = resolve;
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
      return;
    }
    signal.addEventListener("abort", () => nudge?.(), { once: true });
    const started = performance.now();
    let delay = 1;
    for (;;) {
      signal.throwIfAborted();
      const result =
        check.kind === "http"
          ? await probeHttp(endpoint, check.path, 1_000, connected)
          : await tcpProbe();
      if (result.ok) {
        connected();
        return;
      }
      if (signal.aborted) throw signal.reason;
      const elapsed = performance.now() - started;
      const pause = elapsed < 1_000 ? delay : 25;
      delay = Math.min(delay + 1, 5);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pause);
        nudge = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      nudge = undefined;
    }
  })();
  return { ready, onLine };
}
