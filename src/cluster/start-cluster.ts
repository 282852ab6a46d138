// Cluster mode's one entry point, loaded by `herd serve` (dynamic import) only when the config
// has a `cluster` section: without one, neither this module nor the Redis client is loaded.
// Builds the parts around the local Herd, joins the cluster, and returns the directory the
// planes use plus the control plane's node-to-node authentication.
//
// Shutdown order (close): stop renewing and reading, leave the cluster (this node's remaining
// records go at once rather than after a lease), drop the Redis connections, stop the
// watchdog without firing it. Call it after the Herd has closed its sessions.

import type { ClusterConfig } from "../config/index.ts";
import type { Logger, PeerCalls, SessionDirectory } from "../core/index.ts";
import { ClusterDirectory, viaPeer } from "./cluster-directory.ts";
import { ClusterEvents } from "./cluster-events.ts";
import { ClusterStore } from "./cluster-store.ts";
import { ClusterWatch } from "./cluster-watch.ts";
import { FenceWatchdog } from "./fence-watchdog.ts";
import { NodeLease } from "./node-lease.ts";
import { PEER_HEADER, PeerAuth } from "./peer-auth.ts";
import { PeerClient } from "./peer-client.ts";

export interface StartedCluster {
  directory: ClusterDirectory;
  peer: PeerCalls;
  close(): Promise<void>;
}

export async function startCluster(
  local: SessionDirectory,
  config: ClusterConfig,
  /** How far a watcher may fall behind (events.watch_buffer). */
  watchBuffer: number,
  logger: Logger,
): Promise<StartedCluster> {
  const store = await ClusterStore.connect(config.redisUrl, logger);
  const self = { node: config.node, ...config.advertise };
  const auth = new PeerAuth(config.secret, config.node);
  const directory = new ClusterDirectory(local);
  const watchdog = new FenceWatchdog();
  const lease = new NodeLease(
    store,
    config.node,
    config.leaseMs,
    {
      record: () => directory.record(),
      fence: (reason) => directory.fenceAll(reason),
      rebuild: () => directory.rebuild(),
      observed: (records) => directory.observe(records),
    },
    watchdog,
    logger,
  );
  const watch = new ClusterWatch(store, watchBuffer);
  const events = new ClusterEvents(store, local, watch, self, logger, (e) =>
    directory.onLocalEvent(e),
  );
  directory.attach({
    store,
    lease,
    events,
    watch,
    peers: new PeerClient(auth),
    auth,
    watchdog,
    self,
    logger,
  });
  try {
    await lease.start();
    await events.start();
  } catch (err) {
    lease.stop();
    events.stop();
    watchdog.stop();
    await store.close();
    throw err;
  }
  logger.info(
    { node: config.node, advertise: config.advertise, lease: config.leaseMs },
    `cluster: joined as ${config.node} (Redis ${store.where()})`,
  );
  return {
    directory,
    peer: {
      header: PEER_HEADER,
      verify: (credential) => auth.verify(credential, "control"),
      run: (node, handler) => viaPeer.run(node, handler),
    },
    async close() {
      lease.stop();
      events.stop();
      await store.leave(config.node).catch(() => {});
      await store.close();
      await events.settled();
      watchdog.stop();
    },
  };
}
