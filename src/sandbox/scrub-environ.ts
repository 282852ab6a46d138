// Takes the daemon's secrets out of its /proc/<pid>/environ. That file shows the bytes the
// kernel placed on the stack at exec, whatever the process did to its environment since
// (unsetenv only drops libc's pointer to them): a worker running as the daemon's uid without a
// PID namespace (`isolation: none`) could read the control token, the cluster secret or Redis
// credentials there. So, once the config has read them: each variable holding a secret leaves
// process.env (no worker or child inherits it) and its bytes on the stack are overwritten with
// zeros through /proc/self/mem, which a process may always write for itself. Nothing else of
// the environment moves (libc still points at the other strings). Call once, at start.

import { closeSync, openSync, readFileSync, writeSync } from "node:fs";

/**
 * Removes every variable whose value is one of `secrets` (or whose name is in `names`);
 * returns the names removed, or throws when /proc/self/mem refuses the write.
 */
export function scrubEnviron(secrets: readonly string[], names: readonly string[] = []): string[] {
  const values = new Set(secrets.filter((s) => s.length > 0));
  const removed = Object.keys(process.env).filter(
    (name) => names.includes(name) || values.has(process.env[name] ?? "\0"),
  );
  if (removed.length === 0) return removed;
  for (const name of removed) delete process.env[name];
  const stat = readFileSync("/proc/self/stat", "utf8");
  // Fields after "(comm) ": state is field 3; env_start and env_end are fields 50 and 51.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const envStart = Number(fields[50 - 3]);
  const environ = readFileSync("/proc/self/environ");
  const fd = openSync("/proc/self/mem", "r+");
  try {
    let offset = 0;
    while (offset < environ.length) {
      let end = environ.indexOf(0, offset);
      if (end < 0) end = environ.length;
      const entry = environ.subarray(offset, end).toString("latin1");
      const name = entry.slice(0, entry.indexOf("="));
      if (removed.includes(name)) {
        writeSync(fd, Buffer.alloc(end - offset), 0, end - offset, envStart + offset);
      }
      offset = end + 1;
    }
  } finally {
    closeSync(fd);
  }
  return removed;
}
