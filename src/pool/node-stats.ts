// Host figures for GetStats. CPU idle is measured between consecutive calls (the first call
// measures since boot), so a scraper polling every few seconds sees recent load.

import { readFileSync } from "node:fs";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import type { NodeStats } from "../core/index.ts";

let previous = cpuTimes();

function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

function memoryAvailable(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    if (match) return Number(match[1]) * 1024;
  } catch {}
  return freemem();
}

export function nodeStats(): NodeStats {
  const now = cpuTimes();
  const total = now.total - previous.total;
  const cpuIdle = total > 0 ? (now.idle - previous.idle) / total : 1;
  if (total > 0) previous = now;
  return {
    memoryTotalBytes: totalmem(),
    memoryAvailableBytes: memoryAvailable(),
    cpuIdle: Math.min(1, Math.max(0, cpuIdle)),
    load1: loadavg()[0] ?? 0,
  };
}
