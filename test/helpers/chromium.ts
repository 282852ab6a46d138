// Debian's Chromium, the only browser the tests use (scripts/setup-chromium.sh installs it;
// no test downloads one), and the flags it runs headless with as root on this closed network:
// without the background-networking ones it keeps trying to reach hosts it cannot. Pages for it
// come from loopback.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export const CHROMIUM = "/usr/bin/chromium";

/** Launch options for Playwright's chromium.launch, or a run-server's x-playwright-launch-options. */
export const CHROMIUM_LAUNCH = {
  executablePath: CHROMIUM,
  args: [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
};

/**
 * A page a browser in a worker can load: a worker's network is `egress` by default, which
 * reaches neither this host's loopback nor anything else here (the network is closed), so the
 * page travels in its URL.
 */
export function inlinePage(title: string): string {
  return `data:text/html,${encodeURIComponent(`<title>${title}</title>`)}`;
}

/** A page on loopback, for a browser on the host (not in a worker: see inlinePage). */
export interface LocalPage {
  url: string;
  close(): Promise<void>;
}

export async function serveLocalPage(title: string): Promise<LocalPage> {
  const server = createServer((_req, res) =>
    res.writeHead(200, { "content-type": "text/html" }).end(`<title>${title}</title>`),
  );
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
