"""The landing page's Playwright client, as a new user writes it: connect to herd's data plane
with an X-Session-ID, open a page, disconnect. Debian's chromium is passed in the launch-options
header (the host has no Playwright browser download).

  python seed_client.py WS_URL PAGE_URL MODE SESSION_ID...

MODE "close": each session in turn connects, loads the page, prints {"session", "title"} and
closes. MODE "hang": the first session connects, loads the page, prints, then waits to be
killed (kill -9 mid-session).
"""

import json
import sys
import time

from playwright.sync_api import sync_playwright

LAUNCH = {
    "executablePath": "/usr/bin/chromium",
    "args": ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-sync"],
}


def main() -> None:
    ws_url, page_url, mode, *sessions = sys.argv[1:]
    with sync_playwright() as p:
        for session in sessions:
            browser = p.chromium.connect(
                ws_url,
                headers={"X-Session-ID": session, "x-playwright-launch-options": json.dumps(LAUNCH)},
                timeout=90_000,
            )
            page = browser.new_page()
            page.goto(page_url)
            print(json.dumps({"session": session, "title": page.title()}), flush=True)
            if mode == "hang":
                time.sleep(3600)
            browser.close()


if __name__ == "__main__":
    main()
