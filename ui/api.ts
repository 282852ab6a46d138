// The page's herd.v1 client: @connectrpc/connect-web over fetch, to the control plane that
// served the page, through the same API and auth as every SDK. The bearer token lives only in
// this module's memory (never a cookie, the URL or web storage), so closing or reloading the
// tab forgets it.

import {
  type Client,
  Code,
  ConnectError,
  createClient,
  type Interceptor,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { HerdService } from "../gen/herd/v1/herd_pb.ts";

export type Herd = Client<typeof HerdService>;

let token = "";

export function setToken(value: string): void {
  token = value.trim();
}

const bearer: Interceptor = (next) => (req) => {
  if (token !== "") req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

/** `baseUrl`: the control plane's root, e.g. "http://127.0.0.1:7070". */
export function herdClient(baseUrl: string): Herd {
  return createClient(
    HerdService,
    createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors: [bearer] }),
  );
}

/** The control plane's root URL for a page served at <root>/ui/. */
export function controlPlaneUrl(pageUrl: string): string {
  return new URL("..", pageUrl).href.replace(/\/$/, "");
}

export function errorCode(err: unknown): Code {
  return ConnectError.from(err).code;
}

export function errorText(err: unknown): string {
  const e = ConnectError.from(err);
  return `${Code[e.code] ?? e.code}: ${e.rawMessage}`;
}

export { Code };
