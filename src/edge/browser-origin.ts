// Was a request made by a browser for a page of another origin? Browsers say so themselves:
// `Sec-Fetch-Site` (cross-site, same-site: another origin; same-origin, none: the page's own
// or the user's typing) on every request of a current browser, and `Origin` on every request
// that is not a plain GET/HEAD — compared with the request's own Host (scheme aside: a TLS
// terminator in front changes it). `Origin: null` (a sandboxed frame, a file) is another
// origin. A request with neither is not a browser page's (curl, the SDKs, Playwright's
// connect) or a same-origin GET of an old browser. Pure.

export interface BrowserHeaders {
  host: string | undefined;
  origin: string | undefined;
  fetchSite: string | undefined;
}

export function fromOtherOrigin(h: BrowserHeaders): boolean {
  const site = h.fetchSite;
  if (site !== undefined && site !== "same-origin" && site !== "none") return true;
  const origin = h.origin;
  if (origin === undefined) return false;
  const scheme = origin.indexOf("://");
  if (scheme < 0 || h.host === undefined) return true;
  return origin.slice(scheme + 3).toLowerCase() !== h.host.toLowerCase();
}
