// Shared by the isolation specs: one daemon with a hostile worker pool per isolation setting,
// a way to make a session's worker try something, and the leak checks isolation adds to the
// process checks (uids of the range, sandbox directories).

import { readdirSync, readFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { expect } from "vitest";
import { parse } from "yaml";
import {
  type Daemon,
  type Exit,
  expectNoLeaks,
  killAllWithTag,
  type LeakTag,
  REPO_ROOT,
} from "../helpers/index.ts";

export const HOSTILE = "test/security/hostile-worker.mjs";
/**
 * Spec files run in parallel, each with its own daemon: each gives its pools a uid range of its
 * own, so its leak check counts only its own workers' uids.
 */
export type UidRange = [number, number];
export const uidRangeKey = ([first, last]: UidRange) => `${first}-${last}`;

/** A pool of hostile workers; `env` should carry the leak tag. */
export function hostilePool(
  env: Record<string, string>,
  isolation?: Record<string, string> | "none",
) {
  return {
    cmd: ["node", HOSTILE],
    health_path: "/health",
    env,
    ...(isolation ? { isolation } : {}),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the fixture
export type Answer = Record<string, any>;

/** Makes session `session` of `pool` (created on first use) ask its worker `path`. */
export function ask(daemon: Daemon, pool: string, session: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = get(
      `${daemon.dataUrl}${path}`,
      { agent: false, headers: { "X-Session-ID": session, "X-Herd-Pool": pool } },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`${path}: ${res.statusCode} ${body}`));
          else resolve(JSON.parse(body) as Answer);
        });
      },
    );
    req.on("error", reject);
  });
}

/** Every relay socket of the sandboxes of daemon `pid` (one per prepared or live worker). */
export function relaySockets(pid: number): string[] {
  return sandboxDirsOf(pid).flatMap((dir) =>
    (readdirSync(join("/run", dir), { recursive: true }) as string[])
      .filter((path) => path.endsWith("relay/http.sock"))
      .map((path) => join("/run", dir, path)),
  );
}

/** Live processes whose real uid lies in the range `user: auto` hands out. */
export function processesInUidRange([first, last]: UidRange): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${name}/status`, "utf8"))?.[1]);
      if (uid >= first && uid <= last) found.push(Number(name));
    } catch {}
  }
  return found;
}

/** The sandbox roots of the daemon (or in-process Herd) with this pid (runtime-dir.ts). */
export function sandboxDirsOf(pid: number): string[] {
  let names: string[] = [];
  try {
    names = readdirSync("/run/herd-sandbox");
  } catch {}
  return names.filter((n) => n.startsWith(`${pid}-`)).map((n) => join("herd-sandbox", n));
}

/** The uids daemon `pid` still claims host-wide (/run/herd-uids/<uid> naming it). */
export function uidClaimsOf(pid: number): string[] {
  let names: string[] = [];
  try {
    names = readdirSync("/run/herd-uids");
  } catch {}
  return names.filter((uid) => {
    try {
      return readFileSync(join("/run/herd-uids", uid), "utf8").startsWith(`${pid} `);
    } catch {
      return false;
    }
  });
}

/** After the daemon `pid` stopped: no uid of `range` in use, no sandbox directory of its left. */
export async function expectNoIsolationLeaks(range: UidRange, pid: number): Promise<void> {
  for (let waited = 0; processesInUidRange(range).length > 0 && waited < 15_000; waited += 50) {
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(processesInUidRange(range), "processes still running under worker uids").toEqual([]);
  expect(sandboxDirsOf(pid)).toEqual([]);
  expect(uidClaimsOf(pid), "host-wide uid claims left behind").toEqual([]);
}

/**
 * Stops a spec's contained daemon and proves nothing of it is left: no process with its leak
 * tag, no uid of `range` in use, no sandbox directory or uid claim of its; whatever is, is
 * killed. Resolves with its exit.
 */
export async function stopContained(
  daemon: Daemon | undefined,
  tag: string,
  range: UidRange,
): Promise<Exit | undefined> {
  const pid = daemon?.pid ?? 0;
  const exit = await daemon?.stop();
  try {
    await expectNoLeaks(tag);
    await expectNoIsolationLeaks(range, pid);
  } finally {
    killAllWithTag(tag);
  }
  return exit;
}

/**
 * An example's herd.yaml as a spec runs it: from the checkout, `isolation` over each pool's own,
 * the leak tag in each pool's environment.
 */
export function exampleConfig(
  example: string,
  isolation: Record<string, unknown>,
  leak: LeakTag,
): Record<string, unknown> {
  const doc = parse(readFileSync(join(REPO_ROOT, "examples", example, "herd.yaml"), "utf8")) as {
    workers: Record<string, Record<string, unknown>>;
  };
  for (const pool of Object.values(doc.workers)) {
    pool.cwd = join("examples", example);
    pool.isolation = { ...(pool.isolation as object), ...isolation };
    pool.env = { ...(pool.env as object), ...leak.env };
  }
  return doc;
}
