import { afterEach, describe, expect, it } from "vitest";
import { herdFixture } from "../../test/helpers/herd.ts";

const fx = herdFixture();
afterEach(() => fx.cleanup());

// Stops listening at its first connection (the readiness probe's), then exits: a worker that
// dies right after it became ready.
const DIES_AFTER_READY = `
const server = require("node:http").createServer((q, r) => r.end("ok"));
server.on("connection", () => { server.close(); console.error("boom: lost my database"); setTimeout(() => process.exit(5), 100); });
server.listen(Number(process.env.PORT), "127.0.0.1");
setInterval(() => {}, 1e6);
`;

describe("start failure messages", () => {
  it("reports a worker that exits right after becoming ready as an exit, not as a port stranger", async () => {
    const herd = await fx.start({ max: 1, command: [process.execPath, "-e", DIES_AFTER_READY] });
    // A start that wins the race (the worker exits only after its session began) says nothing
    // about start messages; try until a few starts have failed, and fail if none ever did.
    const failures: string[] = [];
    for (let i = 0; i < 20 && failures.length < 3; i++) {
      const outcome = await herd.acquire("w", `s${i}`).then(
        (s) => herd.release(s.id, { kill: true }).then(() => undefined),
        (err: Error) => err.message,
      );
      if (outcome !== undefined) failures.push(outcome);
    }
    expect(failures.length).toBeGreaterThan(0);
    for (const outcome of failures) {
      expect(outcome).not.toMatch(/another program|port 0/);
      expect(outcome).toMatch(/exited with code 5|stopped listening/);
    }
  });

  it("shows several lines of a failed start's stderr, so the cause is not hidden by the last", async () => {
    const script =
      'for (const l of ["npm error code ENOENT", "npm error path /app/package.json", "npm error enoent Could not read package.json", "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log"]) console.error(l); process.exit(254);';
    const herd = await fx.start({ max: 1, command: [process.execPath, "-e", script] });
    const err = await herd.acquire("w", "s").catch((e: Error) => e);
    expect(String(err)).toMatch(/exited with code 254/);
    expect(String(err)).toContain("Could not read package.json");
    expect(String(err)).toContain("A complete log");
  });
});
