// nginx as the reference proxy for the data-plane benchmark: one process (no master), upstream
// keep-alive on both sides without a request cap, no logging — the configuration a careful
// operator would put in front of a worker.
// Installed by scripts/setup-bench.sh (Debian's nginx); absent, the benchmark says so and skips it.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p));

export interface RunningNginx {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Starts nginx proxying to `upstream` (http://host:port) on `port`; undefined without nginx.
 * `bySession`: X-Session-ID value → its own upstream instead (herd's routing, done by a map).
 */
export async function startNginx(
  upstream: string,
  port: number,
  bySession: Record<string, string> = {},
): Promise<RunningNginx | undefined> {
  if (!NGINX) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "herd-bench-nginx-"));
  const target = new URL(upstream).host;
  const routes = Object.entries(bySession).map(([id, url], i) => ({
    id,
    name: `w${i}`,
    host: new URL(url).host,
  }));
  const routing = routes
    .map(
      (r) =>
        `  upstream ${r.name} { server ${r.host}; keepalive 8; keepalive_requests 4294967295; }\n`,
    )
    .join("");
  const map =
    routes.length === 0
      ? ""
      : `  map $http_x_session_id $target {\n    default worker;\n${routes
          .map((r) => `    ${JSON.stringify(r.id)} ${r.name};\n`)
          .join("")}  }\n`;
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream worker { server ${target}; keepalive 64; keepalive_requests 4294967295; }
${routing}${map}  server {
    listen 127.0.0.1:${port};
    # Like herd: never close a client's or a worker's keep-alive connection after N requests
    # (nginx's default of 1000 made load generators count each close as an error).
    keepalive_requests 4294967295;
    location / {
      proxy_pass http://${routes.length > 0 ? "$target" : "worker"};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`,
  );
  const child: ChildProcess = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (let i = 0; i < 200 && !(await portOpen(port)); i++) {
    if (child.exitCode !== null)
      throw new Error(`nginx exited (${child.exitCode}); see ${dir}/error.log`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      child.kill("SIGQUIT");
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
