// Was a request made by a browser for a page of another origin? Browsers say so themselves:
// `Sec-Fetch-Site` (cross-site, same-site: another origin; same-origin, none: the page's own
// or the user's typing) on every request of a current browser, and `Origin` on every request
// that is not a plain GET/HEAD — compared with the request's own Host (scheme aside: a TLS
// terminator in front changes it). `Origin: null` (a sandboxed frame, a file) is another
// origin. Browsers send Sec-Fetch-Site only to HTTPS and localhost, though, so over plain
// HTTP to a name a cross-origin GET (no-cors, an image, a link) carries neither; then the
// origin part of its `Referer`, if any, is compared instead. A request with none of the three
// is not a browser page's (curl, the SDKs, Playwright's connect), or one whose page suppressed
// its Referer — the case only HTTPS closes (docs/operations.md). Pure.

export interface BrowserHeaders {
  host: string | undefined;
  origin: string | undefined;
  fetchSite: string | undefined;
  referer: string | undefined;
}

export function fromOtherOrigin(h: BrowserHeaders): boolean {
  const site = h.fetchSite;
  if (site !== undefined && site !== "same-origin" && site !== "none") return true;
  if (h.origin !== undefined) return !sameAuthority(h.origin, h.origin.length, h.host);
  const referer = h.referer;
  if (site !== undefined || referer === undefined) return false;
  const scheme = referer.indexOf("://");
  const slash = scheme < 0 ? -1 : referer.indexOf("/", scheme + 3);
  return !sameAuthority(referer, slash < 0 ? referer.length : slash, h.host);
}

/** Is url[..end)'s authority (after "scheme://") the request's Host? */
function sameAuthority(url: string, end: number, host: string | undefined): boolean {
  const scheme = url.indexOf("://");
  if (scheme < 0 || host === undefined) return false;
  return url.slice(scheme + 3, end).toLowerCase() === host.toLowerCase();
}
