// Cluster mode's one entry point, loaded by `herd serve` (dynamic import) only when the config
// has a `cluster` section: without one, neither this module nor the Redis client is loaded.
// Builds the parts around the local Herd, joins the cluster, and returns the directory the
// planes use plus the control plane's node-to-node authentication.
//
// Ready means ready: it returns once this node has joined, knows every live node's record and
// reads the event stream, so `herd is ready` is never logged before the cluster part is.
//
// The tenants' max_sessions claims (redis-quota.ts) are renewed at the end of every lease tick,
// so they live exactly as long as the node renews; a restart leaves them in Redis, and the
// successor's first tick renews them.
//
// Shutdown order (close): stop renewing; let the event pump put every local event (the end
// events of the sessions the Herd just closed) into Redis; stop reading; leave the cluster
// (this node's record and remaining session records go at once rather than after a lease);
// drop the Redis connections; stop the watchdog without firing it. Call it after the Herd has
// closed its sessions.
//
// Restart in place (src/cli/restart.ts): `handOver` (after the Herd's own, which sealed its
// event log) lets the pump put the last local events into Redis, pauses the lease and gives up
// the handed sessions' claims: the state a successor's `startCluster(…, adoption)` goes on from,
// as the same node (no join: it renews the same lease at once), with the same watchdog (its
// input is handed over too). From then on this process neither renews nor appends; `reclaim`
// (the successor exited before it served) makes it the node again, and drops from Redis, as
// lost, the sessions the successor had started meanwhile (their workers died with it). A close while handed over
// leaves nothing: the node, its records and its watchdog are the successor's.

import type { Writable } from "node:stream";
import type { ClusterConfig } from "../config/index.ts";
import type {
  Logger,
  NodeDrain,
  PeerCalls,
  SessionDirectory,
  SessionLogSource,
  SharedMaxSessions,
  SharedRates,
} from "../core/index.ts";
import { CapacityLedger } from "./capacity-ledger.ts";
import { ClusterAcquire } from "./cluster-acquire.ts";
import { ClusterDirectory } from "./cluster-directory.ts";
import { ClusterEvents } from "./cluster-events.ts";
import { ClusterWatch } from "./cluster-watch.ts";
import { FenceWatchdog } from "./fence-watchdog.ts";
import { LiveNodes } from "./live-nodes.ts";
import { type Claim, LocalClaims } from "./local-claims.ts";
import { type LeaseHandOff, NodeLease } from "./node-lease.ts";
import { PEER_HEADER, PeerAuth } from "./peer-auth.ts";
import { type AnyRequest, verifyPeerCall } from "./peer-calls.ts";
import { PeerClient } from "./peer-client.ts";
import { RedisConnection } from "./redis-connection.ts";
import { RedisEvents } from "./redis-events.ts";
import { RedisNodes } from "./redis-nodes.ts";
import { RedisQuota } from "./redis-quota.ts";
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
  /** The tenants' max_sessions claims, counted for every node at once. */
  maxSessions: SharedMaxSessions;
  /** Restart: stop renewing and appending; what the successor of this node goes on from. */
  handOver(sessionIds: string[]): Promise<ClusterHandOff>;
  /** The fence watchdog's input, which the successor writes on too. */
  watchdog: Writable;
  /** The successor exited before it served: this process is the node again. */
  reclaim(handOff: ClusterHandOff): void;
  close(): Promise<void>;
}

/** What a restart hands over of a cluster node (plain data, for the IPC channel). */
export interface ClusterHandOff {
  node: string;
  lease: LeaseHandOff;
  /** The handed sessions' claims, `[id, claim]`. */
  claims: [string, Claim][];
}

/** A restart's successor: the predecessor's state, and its watchdog's input. */
export interface ClusterAdoption {
  state: ClusterHandOff;
  watchdog: Writable;
}

export async function startCluster(
  local: SessionDirectory & SessionLogSource,
  config: ClusterConfig,
  /** How far a watcher may fall behind (events.watch_buffer). */
  watchBuffer: number,
  logger: Logger,
  /** This node's drain: its record says so at once, and placement skips it. */
  drain: NodeDrain,
  adoption?: ClusterAdoption,
): Promise<StartedCluster> {
  if (adoption && adoption.state.node !== config.node) {
    throw new Error(`restart: node ${adoption.state.node} cannot be taken over as ${config.node}`);
  }
  const redis = await RedisConnection.connect(config.redisUrl, logger);
  const members = new RedisNodes(redis);
  const sessions = new RedisSessions(redis);
  const stream = new RedisEvents(redis);
  const self = { node: config.node, ...config.advertise };
  const auth = new PeerAuth(config.secret, config.node);
  const keys = new RecordKeys(config.secret);
  const nodes = new LiveNodes(keys, () => members.nodes());
  const capacity = new CapacityLedger(local, self, nodes, config.leaseMs, drain);
  const watchdog = new FenceWatchdog(adoption?.watchdog);
  const claims = new LocalClaims(local, sessions, self, keys, watchdog);
  if (adoption) claims.adopt(adoption.state.claims);
  let handed = false;
  const quota = new RedisQuota(redis, local, config.leaseMs, logger);
  const lease = new NodeLease(
    members,
    config.node,
    config.leaseMs,
    {
      record: () => capacity.record(),
      // Every tick that renewed (or rejoined) ends here: the tenants' claims this node keeps
      // live for another lease with it (redis-quota.ts).
      observe: (records) => {
        capacity.observe(records);
        quota.renew();
      },
    },
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
    await lease.start(adoption?.state.lease);
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
    `cluster: ${adoption ? "took over" : "joined as"} ${config.node} (Redis ${redis.where()})`,
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
    maxSessions: quota,
    async handOver(sessionIds) {
      handed = true;
      await events.flush(2_000);
      const leaseState = await lease.pause();
      return { node: config.node, lease: leaseState, claims: claims.handOver(sessionIds) };
    },
    watchdog: watchdog.handle,
    reclaim(handOff) {
      handed = false;
      claims.adopt(handOff.claims);
      lease.resume();
      void claims.reconcile((held) =>
        members.reconcile(config.node, held).then(
          (lost) => {
            if (lost > 0)
              logger.info({ lost }, "cluster: sessions the dead successor started: lost");
          },
          (err: unknown) =>
            logger.warn(
              { err: String(err) },
              "cluster: could not drop the dead successor's sessions from Redis (they go when the node leaves or is lost)",
            ),
        ),
      );
    },
    async close() {
      lease.stop();
      await events.flush(2_000);
      events.stop();
      if (!handed) await members.leave(config.node).catch(() => {});
      await redis.close();
      await events.settled();
      if (handed) watchdog.release();
      else watchdog.stop();
    },
  };
}
