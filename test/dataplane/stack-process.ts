// Runs a data-plane stack (stack.ts) in a process of its own, so a test can measure the
// proxy's memory apart from the client's. Prints one JSON line {url, tag, pid} when serving;
// closing stdin stops the stack (whose stop() proves no tagged process leaked) and exits.
// Usage: node --import tsx test/dataplane/stack-process.ts ['<PoolInput JSON>']
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { expectNoLeaks } from "../helpers/index.ts";
import { type PoolInput, startStack } from "./stack.ts";

const SELF = fileURLToPath(import.meta.url);

export interface StackProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts the stack process; stop() ends it and proves its workers are gone. */
export async function startStackProcess(pool: PoolInput = {}): Promise<StackProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, JSON.stringify(pool)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((ok) => child.once("exit", ok));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error(`stack process exited early (code ${await exited})`);
  const { url, tag } = JSON.parse(first.value) as { url: string; tag: string };
  return {
    url,
    pid: child.pid!,
    async stop() {
      child.stdin!.end();
      const code = await exited;
      await expectNoLeaks(tag);
      if (code !== 0) throw new Error(`stack process exited with code ${code}`);
    },
  };
}

if (process.argv[1] === SELF) {
  const stack = await startStack([JSON.parse(process.argv[2] ?? "{}") as PoolInput]);
  process.stdout.write(`${JSON.stringify({ url: stack.url, tag: stack.tag, pid: process.pid })}\n`);
  for await (const _ of createInterface({ input: process.stdin })) {
    // no commands: the stack runs until stdin closes
  }
  await stack.stop();
}
