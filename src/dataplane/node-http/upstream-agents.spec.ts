import { get } from "node:http";
import { afterEach, expect, it } from "vitest";
import { stackTracker, startStack } from "../../../test/dataplane/stack.ts";
import { silentLogger } from "../../core/index.ts";
import { UpstreamAgents } from "./upstream-agents.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

it("destroys a worker's agent and its kept-alive sockets when the worker stops", async () => {
  const s = track(await startStack());
  const agents = new UpstreamAgents(s.herd, silentLogger);
  try {
    const session = await s.herd.acquire("p0", "agent-life");
    const agent = agents.agentFor(session);
    expect(agents.agentFor(session)).toBe(agent);
    await new Promise<void>((ok, fail) =>
      get(`http://${session.workerAddress}/whoami`, { agent }, (res) => {
        res.resume();
        res.on("end", ok);
      }).once("error", fail),
    );
    await expect.poll(() => Object.values(agent.freeSockets).flat().length).toBe(1);
    const [socket] = Object.values(agent.freeSockets).flat();
    await s.herd.release("agent-life", { kill: true });
    // The worker_stopped event drops the agent (the next request gets a fresh one)...
    await expect.poll(() => agents.agentFor(session) !== agent).toBe(true);
    // ...and destroying it closed its kept-alive sockets.
    expect(socket!.destroyed).toBe(true);
  } finally {
    agents.close();
  }
});
