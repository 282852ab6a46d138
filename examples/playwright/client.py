#!/usr/bin/env python3
"""Drive a browser through herd from Python: hold a session on the control plane, connect
Playwright to the data plane with the session's headers, load a page, print what happened.

The session is held (HoldSession) for the ``with`` block, so if this script dies the daemon
ends the session and kills its run-server and browser once its reconnect window
(disconnect_grace, 2 s by default) has passed. Needs examples/playwright/setup.sh.

  .venv/bin/python examples/playwright/client.py --control http://127.0.0.1:7070 URL
"""

import argparse
import json

import herd
from playwright.sync_api import sync_playwright


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="page to load in the session's browser")
    parser.add_argument("--control", default="http://127.0.0.1:7070", help="control plane URL")
    parser.add_argument("--pool", default="browser")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="browser on the herd host")
    args = parser.parse_args()

    launch = {
        "executablePath": args.chromium,
        "args": ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"],
    }
    with herd.Client(args.control) as client, client.session(args.pool, wait=90) as s:
        ws_url = "ws" + s.proxy_url.removeprefix("http") + "/"
        headers = {**s.headers, "x-playwright-launch-options": json.dumps(launch)}
        with sync_playwright() as pw:
            browser = pw.chromium.connect(ws_url, headers=headers, timeout=90_000)
            page = browser.new_page()
            page.goto(args.url)
            result = {"session": s.id, "worker_pid": s.worker_pid, "title": page.title()}
            browser.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
