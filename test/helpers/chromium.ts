// Debian's Chromium, the only browser the tests use (scripts/setup-chromium.sh installs it;
// no test downloads one), and the flags it runs headless with as root on this closed network:
// without the background-networking ones it keeps trying to reach hosts it cannot.
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
