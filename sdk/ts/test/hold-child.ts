// A client process that holds one session and then waits to be killed: the hold spec SIGKILLs
// it to prove the session dies with its holder.  Usage: tsx hold-child.ts <baseUrl> <pool>
import { createHerdClient } from "../src/index.ts";

const [baseUrl, pool] = process.argv.slice(2);
if (baseUrl === undefined || pool === undefined) {
  console.error("usage: hold-child.ts <baseUrl> <pool>");
  process.exit(2);
}
const held = await createHerdClient({ baseUrl }).hold(pool);
process.stdout.write(`HELD ${held.id}\n`);
held.signal.addEventListener("abort", () => process.exit(3));
setInterval(() => {}, 60_000);
