import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load-config.ts";

const dir = mkdtempSync(join(tmpdir(), "herd-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const path = join(dir, `c${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** The error lines for a config, with the temp file name cut off. */
function errors(text: string, env: Record<string, string> = { PATH: process.env.PATH! }): string[] {
  const path = file(text);
  try {
    loadConfig(path, { env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.split("\n").map((l) => l.replace(`${path}:`, ""));
  }
  throw new Error("config loaded, but errors were expected");
}

const SEED = `workers:
  browser:
    cmd: ["npx", "playwright", "run-server", "--port", "{{.Port}}"]
    min: 1
    max: 5
    ttl: "15m"
    reuse: false
    health_path: "/"
`;

describe("loadConfig", () => {
  it("loads the seed's herd.yaml unchanged", () => {
    const path = file(SEED);
    const c = loadConfig(path);
    expect(c.file).toBe(path);
    expect(c.defaultPool).toBe("browser");
    expect(c.pools).toHaveLength(1);
    expect(c.pools[0]).toMatchObject({
      name: "browser",
      command: ["npx", "playwright", "run-server", "--port", "{{.Port}}"],
      min: 1,
      max: 5,
      idleTtlMs: 15 * 60_000,
      reuse: false,
      healthPath: "/",
      ready: { kind: "http", path: "/" },
      cwd: dir,
    });
    expect(c.control).toEqual({
      listen: "127.0.0.1:7070",
      headerTimeoutMs: 10_000,
      idleTimeoutMs: 30_000,
      maxStreamsPerConnection: 100,
      maxWatchersPerCaller: 256,
      maxHoldsPerCaller: 4096,
    });
    expect(c.data).toEqual({
      listen: "127.0.0.1:8080",
      sessionHeader: "X-Session-ID",
      autoAcquire: true,
      tokens: "auto",
      tokensRequired: false,
      bodyTimeoutMs: 20_000,
      bodyMinRate: 500,
    });
    expect(c.log).toEqual({ level: "info", format: "json" });
    expect(c.metrics).toEqual({ enabled: true });
    expect(c.events).toEqual({ history: 10_000, watchBuffer: 1_024 });
  });

  it("maps every pool key", () => {
    mkdirSync(join(dir, "work"), { recursive: true });
    const c = loadConfig(
      file(`workers:
  a:
    cmd: "exec node server.js"
    env: { MODE: fast, PORT_HINT: 8080, DEBUG: true }
    env_passthrough: [SSL_CERT_FILE, http_proxy]
    cwd: work
    min: 0
    max: 3
    ttl: 90
    reuse: true
    health_path: /health
    health_interval: 1.5s
    health_failures: 2
    start_timeout: 200ms
    ready: { stdout: "listening on \\\\d+" }
    max_lifetime: 1h30m
    heartbeat_grace: 10s
    data_timeout: 30s
    kill_on_data_timeout: false
    release_on_disconnect: true
    disconnect_grace: 500ms
    preempt_idle: 30s
    acquire_timeout: 5s
    queue_limit: 7
    limits: { memory: 512Mi, cpus: 0.5, pids: 256 }
    isolation: { pid_namespace: false }
    stop_grace: 3s
    idle_worker_ttl: 1m
    restart_backoff: 2s
    restart_backoff_max: 1m
    restart_stable: 20s
    warm: auto
    warm_window: 30s
    max_idle: 2
    idle_cpu: 0.1
    log_buffer: 64Ki
  b:
    cmd: [node, w.mjs, --port, 8080]
    ready: tcp
default_pool: b
control:
  listen: "127.0.0.1:0"
  socket: herd.sock
  token_env: MY_TOKEN
  header_timeout: 3s
  idle_timeout: 2m
  max_connections: 50
  max_streams_per_connection: 8
  max_watchers_per_caller: 9
  max_holds_per_caller: 0
data:
  listen: "0.0.0.0:0"
  session_header: X-Agent-ID
  auto_acquire: false
  header_timeout: 5s
  max_header_size: 16Ki
  body_timeout: 1m
  body_min_rate: 1Ki
  max_connections: 900
  max_connections_per_client: 30
  native_relay: false
log: { level: debug, format: pretty }
metrics: { enabled: false }
events: { history: 500, watch_buffer: 64 }
`),
      { env: { PATH: process.env.PATH, MY_TOKEN: "s3cret" } },
    );
    const [a, b] = c.pools;
    expect(a).toEqual({
      name: "a",
      command: ["/bin/sh", "-c", "exec node server.js"],
      env: { MODE: "fast", PORT_HINT: "8080", DEBUG: "true" },
      envPassthrough: ["SSL_CERT_FILE", "http_proxy"],
      cwd: join(dir, "work"),
      min: 0,
      max: 3,
      idleTtlMs: 90_000,
      reuse: true,
      healthPath: "/health",
      healthIntervalMs: 1500,
      healthFailures: 2,
      startTimeoutMs: 200,
      ready: { kind: "stdout", pattern: "listening on \\d+" },
      maxLifetimeMs: 5_400_000,
      heartbeatGraceMs: 10_000,
      dataTimeoutMs: 30_000,
      killOnDataTimeout: false,
      releaseOnDisconnect: true,
      disconnectGraceMs: 500,
      preemptIdleMs: 30_000,
      acquireTimeoutMs: 5000,
      queueLimit: 7,
      limits: { memoryBytes: 512 * 1024 * 1024, cpus: 0.5, pids: 256 },
      logBufferBytes: 64 * 1024,
      isolation: {
        pidNamespace: false,
        user: "default",
        uidRange: [200_000, 265_535],
        network: "auto",
        egress: { allow: [], deny: [] },
        filesystem: "default",
      },
      stopGraceMs: 3000,
      idleWorkerTtlMs: 60_000,
      restartBackoffMs: 2_000,
      restartBackoffMaxMs: 60_000,
      restartStableMs: 20_000,
      warm: "auto",
      warmWindowMs: 30_000,
      maxIdle: 2,
      idleCpu: 0.1,
    });
    expect(b?.warm).toBe("off");
    expect(b?.maxIdle).toBe(b?.max);
    expect(b?.idleCpu).toBe(0);
    expect(b?.command).toEqual(["node", "w.mjs", "--port", "8080"]);
    expect(b?.ready).toEqual({ kind: "tcp" });
    expect(c.defaultPool).toBe("b");
    expect(c.control).toEqual({
      listen: "127.0.0.1:0",
      socket: join(dir, "herd.sock"),
      token: "s3cret",
      headerTimeoutMs: 3000,
      idleTimeoutMs: 120_000,
      maxConnections: 50,
      maxStreamsPerConnection: 8,
      maxWatchersPerCaller: 9,
      maxHoldsPerCaller: 0,
    });
    expect(c.data).toEqual({
      listen: "0.0.0.0:0",
      sessionHeader: "X-Agent-ID",
      autoAcquire: false,
      tokens: "auto",
      tokensRequired: true,
      headerTimeoutMs: 5000,
      maxHeaderSize: 16 * 1024,
      bodyTimeoutMs: 60_000,
      bodyMinRate: 1024,
      maxConnections: 900,
      maxConnectionsPerClient: 30,
      nativeRelay: false,
    });
    expect(c.log).toEqual({ level: "debug", format: "pretty" });
    expect(c.metrics).toEqual({ enabled: false });
    expect(c.events).toEqual({ history: 500, watchBuffer: 64 });
  });

  it("defaults ready to http on health_path, else tcp; `ready: http` uses health_path", () => {
    const c = loadConfig(
      file(`workers:
  a: { cmd: [node], health_path: /up }
  b: { cmd: [node] }
  c: { cmd: [node], ready: http, health_path: /hc }
  d: { cmd: [node], ready: { http: /ready } }
`),
    );
    expect(c.pools.map((p) => p.ready)).toEqual([
      { kind: "http", path: "/up" },
      { kind: "tcp" },
      { kind: "http", path: "/hc" },
      { kind: "http", path: "/ready" },
    ]);
  });

  it("contains by default; `isolation: none` is the explicit opt-out", () => {
    const c = loadConfig(
      file(`workers:
  a: { cmd: [node] }
  b: { cmd: [node], isolation: none }
`),
    );
    expect(
      c.pools.map(({ isolation: { user, network, filesystem } }) => [user, network, filesystem]),
    ).toEqual([
      ["default", "auto", "default"],
      ["inherit", "host", "host"],
    ]);
  });

  it("treats empty sections as defaults and accepts a bound empty control section", () => {
    const c = loadConfig(file("workers:\n  a:\n    cmd: [node]\ncontrol:\ndata:\nlog:\n"));
    expect(c.control.listen).toBe("127.0.0.1:7070");
    expect(c.data.listen).toBe("127.0.0.1:8080");
  });

  it("accepts a literal token on a public control address", () => {
    const c = loadConfig(
      file('workers: { a: { cmd: [node] } }\ncontrol: { listen: ":7070", token: abc }\n'),
    );
    expect(c.control).toMatchObject({ listen: "0.0.0.0:7070", token: "abc" });
  });

  it("says clearly when the file is missing", () => {
    expect(() => loadConfig(join(dir, "nope.yaml"))).toThrow(
      /nope\.yaml: cannot read config: no such file/,
    );
    expect(() => loadConfig(dir)).toThrow(/is a directory/);
  });
});

describe("loadConfig errors carry file:line:col: path", () => {
  it("checks allowed_hosts and session_host", () => {
    expect(
      errors(`${SEED}control:
  allowed_hosts: "herd.example.com"
data:
  allowed_hosts: ["ok.example.com", "*.ok.example.com", "http://x.example.com/"]
  session_host: "sessions.example.com"
`),
    ).toEqual([
      "10:18: control.allowed_hosts: expected a list of host names",
      '12:57: data.allowed_hosts[2]: "http://x.example.com/" is not a host name, "*.domain" or "*" (no scheme, port or path)',
      '13:17: data.session_host: "sessions.example.com" must hold {id} once, in its first label, like "{id}.sessions.example.com"',
    ]);
  });

  it("refuses idle_cpu where sessions never idle out", () => {
    expect(errors(SEED.replace('ttl: "15m"', "ttl: 0\n    idle_cpu: 0.1"))).toEqual([
      "7:15: workers.browser.idle_cpu: idle_cpu needs a ttl (ttl is 0: sessions never idle out)",
    ]);
  });

  it("points at an unknown key and suggests the right one", () => {
    expect(errors(SEED.replace("    min: 1", "    mn: 1"))).toEqual([
      '4:5: workers.browser.mn: unknown key "mn" (did you mean "min"?)',
    ]);
  });

  it("reports every problem of a file at once, in file order", () => {
    expect(
      errors(`workers:
  browser:
    cmd: ["node", 3, {}]
    max: 0
    ttl: "15 min"
    ready: {stdout: "("}
    limits: {memory: "512m", cpuz: 2}
    env:
      "A-B": 1
    healthpath: /x
  other:
    min: 2
control:
  listen: "0.0.0.0:99999"
  tokn: x
bogus: 1
`),
    ).toEqual([
      "3:22: workers.browser.cmd[2]: expected a string",
      "4:10: workers.browser.max: must be ≥ 1",
      '5:10: workers.browser.ttl: "15 min" is not a duration (use e.g. "15m", "1.5s", "200ms", "1h30m", or a number of seconds)',
      "6:21: workers.browser.ready.stdout: not a valid regular expression: Invalid regular expression: /(/: Unterminated group",
      '7:22: workers.browser.limits.memory: "512m" is not a size (use e.g. "512Mi", "1G", "64Ki" or a number of bytes)',
      '7:30: workers.browser.limits.cpuz: unknown key "cpuz" (did you mean "cpus"?)',
      "9:7: workers.browser.env.A-B: expected an environment variable name",
      '10:5: workers.browser.healthpath: unknown key "healthpath" (did you mean "health_path"?)',
      "11:3: workers.other.cmd: required",
      '14:11: control.listen: "0.0.0.0:99999": port must be a number 0-65535 (use "host:port", e.g. "127.0.0.1:7070", "[::1]:7070" or ":7070")',
      '15:3: control.tokn: unknown key "tokn" (did you mean "token"?)',
      '16:1: bogus: unknown key "bogus"',
    ]);
  });

  it.each([
    ["min: x", '4:10: workers.browser.min: expected a number, got "x"'],
    ["min: 1.5", "4:10: workers.browser.min: expected a whole number, got 1.5"],
    ["min: -1", "4:10: workers.browser.min: must be ≥ 0"],
    ["min:", "4:5: workers.browser.min: expected a number, got nothing (null)"],
    ["min: 9", "5:10: workers.browser.max: max (5) must be ≥ min (9)"],
    ["queue_limit: 20000", "4:18: workers.browser.queue_limit: must be ≤ 10000"],
    [
      'max_lifetime: "720h"',
      '4:19: workers.browser.max_lifetime: "720h" is too long: at most 596h, about 24.8 days: the longest timer Node.js can set',
    ],
    ["min: [1]", "4:10: workers.browser.min: expected a number, got a list"],
    [
      "min: 1\n    ready: foo",
      '5:12: workers.browser.ready: expected "tcp", "http", {http: "/path"} or {stdout: "regex"}',
    ],
    [
      "min: 1\n    ready: {htp: /x}",
      '5:12: workers.browser.ready: expected "tcp", "http", {http: "/path"} or {stdout: "regex"}',
    ],
    [
      "min: 1\n    ready: {http: x}",
      '5:19: workers.browser.ready.http: expected a URL path starting with "/"',
    ],
    [
      "min: 1\n    kill_on_data_timeout: maybe",
      '5:27: workers.browser.kill_on_data_timeout: expected true or false, got "maybe"',
    ],
    [
      "min: 1\n    release_on_disconnect: sometimes",
      "5:28: workers.browser.release_on_disconnect: expected true, false or auto",
    ],
    [
      "min: 1\n    disconnect_grace: 600h",
      `5:23: workers.browser.disconnect_grace: "600h" is too long: at most 596h, about 24.8 days: the longest timer Node.js can set`,
    ],
    [
      "min: 1\n    disconnect_grace: soon",
      '5:23: workers.browser.disconnect_grace: "soon" is not a duration (use e.g. "15m", "1.5s", "200ms", "1h30m", or a number of seconds)',
    ],
    ["min: 1\n    warm: yes", "5:11: workers.browser.warm: expected auto or off"],
    [
      "min: 1\n    max_idle: 2",
      "5:15: workers.browser.max_idle: max_idle applies only to warm: auto",
    ],
    [
      "min: 1\n    warm: auto\n    max_idle: 9",
      "6:15: workers.browser.max_idle: max_idle (9) exceeds max (5)",
    ],
    [
      "min: 1\n    warm_window: 1m",
      "5:18: workers.browser.warm_window: warm_window applies only to warm: auto",
    ],
    [
      "min: 1\n    warm: auto\n    warm_window: 10ms",
      "6:18: workers.browser.warm_window: must be at least 100ms",
    ],
    [
      "min: 1\n    idle_cpu: 0",
      "5:15: workers.browser.idle_cpu: must be > 0: a share of one CPU, e.g. 0.05 for 5 %",
    ],
    ["min: 1\n    idle_cpu: lots", '5:15: workers.browser.idle_cpu: expected a number, got "lots"'],
    [
      "min: 1\n    limits: {memory: 1Ki}",
      "5:22: workers.browser.limits.memory: must be at least 1Mi",
    ],
    ["min: 1\n    limits: {cpus: 0}", "5:20: workers.browser.limits.cpus: must be > 0"],
    ["min: 1\n    start_timeout: 0", "5:20: workers.browser.start_timeout: must be at least 1ms"],
    ["min: 1\n    health_failures: 0", "5:22: workers.browser.health_failures: must be ≥ 1"],
    [
      "min: 1\n    env: [A]",
      "5:10: workers.browser.env: expected a map of keys to values, got a list",
    ],
    [
      "min: 1\n    env_passthrough: [HOME, my-var]",
      "5:29: workers.browser.env_passthrough[1]: expected an environment variable name",
    ],
    [
      "min: 1\n    isolation: {pid_ns: true}",
      '5:17: workers.browser.isolation.pid_ns: unknown key "pid_ns" (did you mean "pid_namespace"?)',
    ],
    [
      "min: 1\n    isolation: {network: none}",
      '5:26: workers.browser.isolation.network: expected one of "egress", "private", "host", got "none"',
    ],
    [
      'min: 1\n    isolation: {network: egress, egress: {allow: ["10.0.0.0/8", "10.1.2.3/8"]}}',
      '5:65: workers.browser.isolation.egress.allow[1]: "10.1.2.3/8" has host bits set; the range is 10.0.0.0/8',
    ],
    [
      "min: 1\n    isolation: {egress: {deny: [example.com]}}",
      '5:33: workers.browser.isolation.egress.deny[0]: "example.com" is not an address or CIDR range (e.g. "203.0.113.0/24", "2001:db8::/32")',
    ],
    [
      "min: 1\n    isolation: {network: private, egress: {deny: [203.0.113.0/24]}}",
      "5:43: workers.browser.isolation.egress: allow/deny apply only to network: egress (or network left unset)",
    ],
    [
      'min: 1\n    isolation: {uid_range: "5"}',
      '5:28: workers.browser.isolation.uid_range: must be "FIRST-LAST", e.g. "200000-265535"',
    ],
    [
      "min: 1\n    isolation: {user: no-such-user-herd}",
      '5:23: workers.browser.isolation.user: no user named "no-such-user-herd" on this host (/etc/passwd)',
    ],
  ])("%j", (line, expected) => {
    expect(errors(SEED.replace("min: 1", line))).toEqual([expected]);
  });

  it.each([
    ["cmd: []", "3:10: workers.browser.cmd: must not be empty"],
    ['cmd: ""', "3:10: workers.browser.cmd: must not be empty"],
    ['cmd: ["", x]', "3:10: workers.browser.cmd: the program (first element) must not be empty"],
    [
      "cmd: 5",
      '3:10: workers.browser.cmd: expected a command: a list like ["node", "worker.mjs"], or one string run by /bin/sh -c',
    ],
    [
      "cmd: [no-such-program-herd]",
      '3:11: workers.browser.cmd[0]: command "no-such-program-herd" not found on PATH: install it or give its full path',
    ],
    ["cmd: [./missing.sh]", "3:11: workers.browser.cmd[0]: "],
    ["cwd: nowhere\n    cmd: [node]", "3:10: workers.browser.cwd: "],
  ])("cmd %j", (line, expected) => {
    const lines = errors(SEED.replace(/cmd: .*/, line));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith(expected)).toBe(true);
  });

  it("finds a relative program from the pool's cwd and requires it to be executable", () => {
    writeFileSync(join(dir, "worker.sh"), "#!/bin/sh\n");
    chmodSync(join(dir, "worker.sh"), 0o644);
    const text = "workers:\n  a:\n    cmd: [./worker.sh]\n";
    expect(errors(text)).toEqual([
      `3:11: workers.a.cmd[0]: ${join(dir, "worker.sh")} does not exist or is not executable`,
    ]);
    chmodSync(join(dir, "worker.sh"), 0o755);
    expect(loadConfig(file(text)).pools[0]!.command).toEqual(["./worker.sh"]);
  });

  it.each([
    ["", "1:1: workers: required"],
    ["# nothing\n", "1:1: workers: required"],
    ["- a\n- b\n", "1:1: expected a map of keys to values, got a list"],
    ["workers: {}\n", "1:10: workers: define at least one pool"],
    ["workers:\n", "1:1: workers: expected a map of keys to values, got nothing (null)"],
    [
      'workers:\n  "bad name": {cmd: [node]}\n',
      '2:3: workers["bad name"]: a pool name is 1-63 of A-Z a-z 0-9 . _ - (starting with a letter or digit)',
    ],
    [
      "workers:\n  a: [1\n",
      "3:1: Flow sequence in block collection must be sufficiently indented and end with a ]",
    ],
    ["workers:\n  a: {cmd: [node]}\n  a: {cmd: [node]}\n", "3:3: Map keys must be unique"],
    ["workers:\n\ta: 1\n", "2:1: Tabs are not allowed as indentation"],
  ])("file %j", (text, expected) => {
    expect(errors(text)[0]).toBe(expected);
  });

  it.each([
    [
      "default_pool: brwser",
      '9:15: default_pool: no pool named "brwser" under workers (did you mean "browser"?)',
    ],
    ["events: {history: 200000}", "9:19: events.history: must be ≤ 100000"],
    ["events: {watch_buffer: 0}", "9:24: events.watch_buffer: must be ≥ 1"],
    ["default_pool: zzz", '9:15: default_pool: no pool named "zzz" under workers (pools: browser)'],
    [
      'control: {listen: "127.0.0.1:9000"}\ndata: {listen: ":9000"}',
      "10:16: data.listen: data.listen 0.0.0.0:9000 takes the port of control.listen 127.0.0.1:9000: the control plane and the data plane need different ports",
    ],
    [
      'control: {listen: "localhost:8080"}',
      "9:19: control.listen: control.listen localhost:8080 takes the port of data.listen 127.0.0.1:8080 (the default): the control plane and the data plane need different ports",
    ],
    [
      'control: {listen: "0.0.0.0:7070"}',
      "9:19: control.listen: 0.0.0.0:7070 is reachable from other machines, so the control plane needs a token: set control.token or control.token_env",
    ],
    [
      "control: {token_env: NOPE_TOKEN}",
      "9:22: control.token_env: environment variable NOPE_TOKEN is not set (or empty)",
    ],
    [
      "control: {token: a, token_env: B}",
      "9:32: control.token_env: set token or token_env, not both",
    ],
    ["control: {listen: 7070}", "9:19: control.listen: expected a string, got 7070"],
    [
      "data: {tokens: sometimes}",
      '9:16: data.tokens: expected one of "auto", "required", "off", got "sometimes"',
    ],
    [
      'data: {session_header: "X Session"}',
      "9:24: data.session_header: expected an HTTP header name",
    ],
    ["log: {format: xml}", '9:15: log.format: expected one of "json", "pretty", got "xml"'],
    ["metrics: {enabled: 1}", "9:20: metrics.enabled: expected true or false, got 1"],
    [
      "metrics: {enable: true}",
      '9:11: metrics.enable: unknown key "enable" (did you mean "enabled"?)',
    ],
  ])("top level %j", (line, expected) => {
    expect(errors(`${SEED}${line}\n`)).toEqual([expected]);
  });

  it("resolves aliases when locating errors", () => {
    expect(
      errors(`common: &c
  cmd: [node]
workers:
  a: *c
`),
    ).toEqual(['1:1: common: unknown key "common"']);
  });
});
