// Cluster mode's one entry point, loaded by `herd serve` (dynamic import) only when the config
// has a `cluster` section: without one, neither this module nor the Redis client is loaded.
// Builds the parts around the local Herd, joins the cluster, and returns the directory the
// planes use plus the control plane's node-to-node authentication.
//
// Ready means ready: it returns once this node has joined, knows every live node's record and
// reads the event stream, so `herd is ready` is never logged before the cluster part is.
//
// Shutdown order (close): stop renewing; let the event pump put every local event (the end
// events of the sessions the Herd just closed) into Redis; stop reading; leave the cluster
// (this node's record and remaining session records go at once rather than after a lease);
// drop the Redis connections; stop the watchdog without firing it. Call it after the Herd has
// closed its sessions.

import type { ClusterConfig } from "../config/index.ts";
import type {
  Logger,
  NodeDrain,
  PeerCalls,
  SessionDirectory,
  SessionLogSource,
  SharedRates,
} from "../core/index.ts";
import { CapacityLedger } from "./capacity-ledger.ts";
import { ClusterAcquire } from "./cluster-acquire.ts";
import { ClusterDirectory } from "./cluster-directory.ts";
import { ClusterEvents } from "./cluster-events.ts";
import { ClusterWatch } from "./cluster-watch.ts";
import { FenceWatchdog } from "./fence-watchdog.ts";
import { LiveNodes } from "./live-nodes.ts";
import { LocalClaims } from "./local-claims.ts";
import { NodeLease } from "./node-lease.ts";
import { PEER_HEADER, PeerAuth } from "./peer-auth.ts";
import { type AnyRequest, verifyPeerCall } from "./peer-calls.ts";
import { PeerClient } from "./peer-client.ts";
import { RedisConnection } from "./redis-connection.ts";
import { RedisEvents } from "./redis-events.ts";
import { RedisNodes } from "./redis-nodes.ts";
import { RedisRates } from "./redis-rates.ts";
import { RedisSessions } from "./redis-sessions.ts";
import { RemoteSessions } from "./remote-sessions.ts";
import { RecordKeys } from "./signed-record.ts";
import { viaPeer } from "./via-peer.ts";

export interface StartedCluster {
  directory: ClusterDirectory;
  peer: PeerCalls<AnyRequest>;
  /** Why a local worker died unasked, when the fencing watchdog may have killed it. */
  deathCause(): string | undefined;
  /** The tenants' acquire_rate buckets, shared by every node. */
  rates: SharedRates;
  close(): Promise<void>;
}

export async function startCluster(
  local: SessionDirectory & SessionLogSource,
  config: ClusterConfig,
  /** How far a watcher may fall behind (events.watch_buffer). */
  watchBuffer: number,
  logger: Logger,
  /** This node's drain: its record says so at once, and placement skips it. */
  drain: NodeDrain,
): Promise<StartedCluster> {
  const redis = await RedisConnection.connect(config.redisUrl, logger);
  const members = new RedisNodes(redis);
  const sessions = new RedisSessions(redis);
  const stream = new RedisEvents(redis);
  const self = { node: config.node, ...config.advertise };
  const auth = new PeerAuth(config.secret, config.node);
  const keys = new RecordKeys(config.secret);
  const nodes = new LiveNodes(keys, () => members.nodes());
  const capacity = new CapacityLedger(local, self, nodes, config.leaseMs, drain);
  const watchdog = new FenceWatchdog();
  const claims = new LocalClaims(local, sessions, self, keys, watchdog);
  const lease = new NodeLease(
    members,
    config.node,
    config.leaseMs,
    capacity,
    claims,
    watchdog,
    logger,
  );
  const watch = new ClusterWatch(stream, watchBuffer, keys);
  const events = new ClusterEvents(stream, sessions, local, watch, self, logger, claims, keys);
  const remotes = new RemoteSessions({
    node: config.node,
    store: sessions,
    events,
    nodes,
    peers: new PeerClient(auth),
    auth,
    keys,
    leaseMs: config.leaseMs,
    logger,
  });
  const acquirer = new ClusterAcquire({
    local,
    node: config.node,
    store: sessions,
    lease,
    capacity,
    claims,
    remotes,
    drain,
  });
  const directory = new ClusterDirectory({
    local,
    node: config.node,
    acquirer,
    remotes,
    lease,
    capacity,
    watch,
    auth,
  });
  // Others must stop placing here now, not a renewal later; and a Redis that is back gets the
  // renewal at once (every ms before it counts against the lease).
  drain.begun.addEventListener("abort", () => lease.renewNow(), { once: true });
  redis.onReconnect(() => lease.renewNow());
  try {
    await lease.start();
    capacity.observe(await members.nodes()); // routing to the nodes before the first renewal
    await events.start();
  } catch (err) {
    lease.stop();
    events.stop();
    watchdog.stop();
    await redis.close();
    throw err;
  }
  logger.info(
    { node: config.node, advertise: config.advertise, lease: config.leaseMs },
    `cluster: joined as ${config.node} (Redis ${redis.where()})`,
  );
  return {
    directory,
    peer: {
      header: PEER_HEADER,
      verify: (credential, req) => verifyPeerCall(auth, credential, req),
      run: (node, handler) => viaPeer.run(node, handler),
    },
    deathCause: () => lease.watchdogCause(),
    rates: new RedisRates(redis),
    async close() {
      lease.stop();
      await events.flush(2_000);
      events.stop();
      await members.leave(config.node).catch(() => {});
      await redis.close();
      await events.settled();
      watchdog.stop();
    },
  };
}
