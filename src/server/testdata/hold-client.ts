// A separate process that holds a session and then just keeps reading, so a spec can kill
// it (SIGKILL: no FIN handshake from user code, no chance to clean up) and watch the session
// end. argv: <control url> <session id> <protocol>. Prints "held <worker pid>".

import { herdClient, type Protocol } from "../spec-harness.ts";

const [url, sessionId, protocol] = process.argv.slice(2) as [string, string, Protocol];
const client = herdClient(protocol, url);
for await (const m of client.holdSession({ sessionId })) {
  if (m.kind.case === "session") process.stdout.write(`held ${m.kind.value.workerPid}\n`);
}
