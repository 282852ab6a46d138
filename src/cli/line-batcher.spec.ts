import { execFileSync } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LineBatcher } from "./line-batcher.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "herd-line-batcher-"));
  dirs.push(dir);
  return join(dir, "out");
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("LineBatcher", () => {
  it("writes a turn's lines together, in order, in that turn", async () => {
    const file = tempFile();
    const out = new LineBatcher(openSync(file, "w"));
    out.write("a\n");
    out.write("b\n");
    expect(readFileSync(file, "utf8")).toBe("");
    await turn();
    expect(readFileSync(file, "utf8")).toBe("a\nb\n");
    out.write("c\n");
    await turn();
    expect(readFileSync(file, "utf8")).toBe("a\nb\nc\n");
  });

  it("writes at once when a turn has logged 64 KiB", () => {
    const file = tempFile();
    const out = new LineBatcher(openSync(file, "w"));
    const line = `${"x".repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) out.write(line);
    expect(readFileSync(file, "utf8")).toBe(line.repeat(64));
  });

  it("loses no line when the process exits in the turn that logged it", () => {
    // The daemon's logger, as serve.ts makes it, in a process that exits right after logging.
    const script = `
      const { createLogger } = await import(${JSON.stringify(new URL("./logger.ts", import.meta.url).pathname)});
      const log = createLogger({ level: "info", format: "json" });
      for (let i = 0; i < 3; i++) log.info({ i }, "line");
      process.exit(0);
    `;
    const out = execFileSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      { encoding: "utf8" },
    );
    expect(
      out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).i),
    ).toEqual([0, 1, 2]);
  });
});
