// The host side of `network: egress`: can this host give it (root, iproute2, nftables, IPv4
// forwarding), and the daemon's one nftables table (egress-ruleset.ts) shared by its pools.
//
// Invariants: the table exists while at least one egress pool of this process is open and is
// deleted with the last one, unless it still filters a worker handed to a successor that keeps
// it there (then a later sweep deletes it, once that worker is gone). A table or worker namespace left by a daemon that died (SIGKILL)
// is removed by a sweep (when an egress pool on the host starts, when a daemon's last one closes,
// when a successor adopts a worker out of it): a slot whose claim (CLAIMS/<slot>) names a dead
// process loses its namespace and claim; a dead daemon's table goes once none of the veths in it
// belongs to a live claim — a restart's handed worker (worker-net.ts) stays filtered by its dead
// predecessor's table until its successor has put it in its own, whichever daemon dies when.
// Tables are swept before claims, so a slot named in a table is never claimed anew meanwhile.
// Forwarding: a worker's packets are routed by the host, which needs
// net.ipv4.ip_forward=1. If herd is the one that turns it on, it leaves a mark, and every
// herd table then drops all forwarding that is neither from nor to a worker, so the host
// forwards nothing it did not forward before; the last herd table on the host to go turns it
// off again. Tables are made and deleted under a host-wide lock file (CLAIMS/lock), so two
// daemons never disagree about forwarding. Single-threaded; every command is synchronous (pool
// start and worker prepare time, which the spare absorbs).

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HerdError } from "../../core/index.ts";
import { processRuns, which } from "../../pool/index.ts";
import {
  IFNAME_PREFIX,
  type PoolRules,
  poolRemoval,
  poolRuleset,
  tableName,
  tableRuleset,
} from "./egress-ruleset.ts";

export const CLAIMS = "/run/herd-egress";
const FORWARDING_MARK = join(CLAIMS, "forwarding-enabled-by-herd");
const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

export interface EgressTools {
  ip: string;
  nft: string;
}

let tools: EgressTools | undefined;
let problem: string | undefined | null = null;

/** Runs a tool with `input` on stdin; throws with its stderr. */
export function run(argv: readonly string[], input = ""): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), {
      input,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: 20_000,
    }).toString();
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim();
    throw new Error(`${argv.join(" ")}: ${stderr || (err as Error).message}`);
  }
}

/** Why this host cannot give `network: egress`, or undefined. Checked once per process. */
export function egressProblem(): string | undefined {
  if (problem !== null) return problem;
  problem = detect();
  return problem;
}

function detect(): string | undefined {
  if ((process.getuid?.() ?? 0) !== 0) {
    return "network: egress needs the daemon to run as root (it routes each worker through a veth pair filtered by nftables in the host's namespace)";
  }
  const ip = which("ip");
  const nft = which("nft");
  if (!ip || !nft) {
    return `network: egress needs ${[!ip && "ip (apt-get install iproute2)", !nft && "nft (apt-get install nftables)"].filter(Boolean).join(" and ")} on PATH`;
  }
  const probe = `herd-egress-probe-${process.pid}`;
  try {
    run([nft, "-f", "-"], `add table inet ${probe}\ndelete table inet ${probe}\n`);
  } catch (err) {
    return `network: egress: this kernel refuses nftables: ${(err as Error).message}`;
  }
  try {
    readFileSync(IP_FORWARD, "utf8");
  } catch {
    return `network: egress needs IPv4 forwarding (${IP_FORWARD} is missing)`;
  }
  tools = { ip, nft };
  return undefined;
}

export function egressTools(): EgressTools {
  if (egressProblem() !== undefined || !tools)
    throw new Error("network: egress is unavailable here");
  return tools;
}

/** The daemon's table: made with the first egress pool, deleted with the last. */
class EgressTable {
  private pools = 0;
  private nextIndex = 0;

  openPool(rules: Omit<PoolRules, "index">): number {
    const { nft } = egressTools();
    if (this.pools === 0) {
      withHostLock(() => {
        removeOrphans();
        // A former daemon with this pid left a table that still filters a live worker (handed to
        // a successor not yet holding it, or under an allowlist its pool no longer has): never
        // unfilter it. (A pid reused that soon; starting again gives another.)
        if (filtersLive(process.pid)) {
          throw new HerdError(
            "unavailable",
            `network: egress: nftables table ${tableName(process.pid)}, left by a former daemon with this pid, still filters live workers; start herd again`,
          );
        }
        const guard = enableForwarding();
        // Replace a table a former daemon with this pid left behind.
        run(
          [nft, "-f", "-"],
          `table inet ${tableName(process.pid)}\ndelete table inet ${tableName(process.pid)}\n${tableRuleset(process.pid, guard)}`,
        );
      });
    }
    const index = this.nextIndex++;
    run([nft, "-f", "-"], poolRuleset(process.pid, { ...rules, index }));
    this.pools++;
    return index;
  }

  /** Called once per opened pool, after every worker of it was released. */
  closePool(index: number): void {
    if (--this.pools > 0) {
      try {
        run([egressTools().nft, "-f", "-"], poolRemoval(process.pid, index));
      } catch {}
      return;
    }
    withHostLock(() => {
      dropTable(process.pid);
      sweep();
    });
  }
}

export const egressTable = new EgressTable();

/** Turns IPv4 forwarding on if it is off; true when herd did (now or earlier): guard it. */
function enableForwarding(): boolean {
  mkdirSync(CLAIMS, { recursive: true, mode: 0o700 });
  if (readFileSync(IP_FORWARD, "utf8").trim() !== "1") {
    writeFileSync(FORWARDING_MARK, `${new Date().toISOString()}\n`);
    writeFileSync(IP_FORWARD, "1\n");
  }
  return existsSync(FORWARDING_MARK);
}

/** Forwarding back off if herd turned it on and no herd table is left on the host. */
function restoreForwarding(): void {
  if (!existsSync(FORWARDING_MARK)) return;
  let tables = "";
  try {
    tables = run([egressTools().nft, "list", "tables", "inet"]);
  } catch {
    return;
  }
  if (/table inet herd-egress-\d+$/m.test(tables)) return;
  writeFileSync(IP_FORWARD, "0\n");
  rmSync(FORWARDING_MARK, { force: true });
}

/** Runs `fn` holding CLAIMS/lock (exclusive create; a dead holder's lock is broken). */
function withHostLock<T>(fn: () => T): T {
  mkdirSync(CLAIMS, { recursive: true, mode: 0o700 });
  const lock = join(CLAIMS, "lock");
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let owner = "";
    try {
      owner = readFileSync(lock, "utf8").trim();
    } catch {}
    // Empty: its holder has created it and not yet written its pid.
    if (owner !== "" && !alive(Number(owner))) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`network: egress: ${lock} is held by pid ${owner}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** A zombie is dead: a reaper whose daemon died may wait a while for its new parent to reap it. */
function alive(pid: number): boolean {
  return processRuns(pid);
}

/** Every slot claim on the host: its slot and the process it names (0 if unreadable). */
function* slotClaims(): Generator<{ slot: number; owner: number }> {
  let claims: string[] = [];
  try {
    claims = readdirSync(CLAIMS).filter((n) => /^\d+$/.test(n));
  } catch {}
  for (const slot of claims) {
    let owner = 0;
    try {
      owner = Number(readFileSync(join(CLAIMS, slot), "utf8").trim());
    } catch {
      continue; // released meanwhile
    }
    yield { slot: Number(slot), owner: Number.isSafeInteger(owner) ? owner : 0 };
  }
}

/** Slots whose claim names a live process (a worker that may be alive holds each). */
function liveSlots(): Set<number> {
  const live = new Set<number>();
  for (const { slot, owner } of slotClaims()) if (owner > 0 && alive(owner)) live.add(slot);
  return live;
}

/** Does daemon `pid`'s table filter the veth of a live claim (a handed worker)? */
function filtersLive(pid: number, live = liveSlots()): boolean {
  let members = "";
  try {
    members = run([egressTools().nft, "list", "set", "inet", tableName(pid), "workers"]);
  } catch {
    return false; // no such table
  }
  return [...members.matchAll(new RegExp(`"${IFNAME_PREFIX}(\\d+)"`, "g"))].some((m) =>
    live.has(Number(m[1])),
  );
}

/** Deletes daemon `pid`'s table unless it filters a live claim's veth. */
function dropTable(pid: number, live = liveSlots()): void {
  if (filtersLive(pid, live)) return;
  try {
    run([egressTools().nft, "delete", "table", "inet", tableName(pid)]);
  } catch {} // gone already
}

/** A dead daemon's table, once it filters no live worker (after a successor adopted them). */
export function dropOrphanTable(pid: number): void {
  if (alive(pid)) return;
  withHostLock(() => {
    dropTable(pid);
    restoreForwarding();
  });
}

/**
 * What SIGKILLed daemons left (also run when a daemon's last egress pool closes); a spec calls it
 * to show that nothing else is left.
 */
export function sweepEgressOrphans(): void {
  withHostLock(sweep);
}

function sweep(): void {
  removeOrphans();
  restoreForwarding();
}

/** Tables, then worker namespaces and claims, of processes that no longer run. */
function removeOrphans(): void {
  const { ip, nft } = egressTools();
  const live = liveSlots();
  let tables = "";
  try {
    tables = run([nft, "list", "tables", "inet"]);
  } catch {}
  for (const m of tables.matchAll(/table inet herd-egress-(\d+)$/gm)) {
    const pid = Number(m[1]);
    if (pid !== process.pid && !alive(pid)) dropTable(pid, live);
  }
  // Read again: a claim made since `live` was taken is a live one.
  for (const { slot, owner } of slotClaims()) {
    if (owner > 0 && alive(owner)) continue;
    try {
      run([ip, "netns", "delete", `${IFNAME_PREFIX}${slot}`]);
    } catch {}
    rmSync(join(CLAIMS, String(slot)), { force: true });
  }
}
