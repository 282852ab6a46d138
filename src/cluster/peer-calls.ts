// Control calls between nodes, both ends: the caller's interceptor puts a one-call credential
// (peer-auth.ts) on each request, bound to the target node, the procedure and the request
// message's bytes; the callee's check verifies it before the call runs. The bytes are the
// message's protobuf encoding: both ends run protobuf-es, whose encoding of a message it
// decoded is the bytes it decoded (fields in number order, map entries in wire order).
// A server-streaming request's one message is read ahead and handed on unchanged.

import { type Message, toBinary } from "@bufbuild/protobuf";
import type { Interceptor, StreamRequest, UnaryRequest } from "@connectrpc/connect";
import { PEER_HEADER, type PeerAuth } from "./peer-auth.ts";

/** A control-plane call, as a peer credential binds it. */
export type AnyRequest = UnaryRequest | StreamRequest;

/** The request's procedure path and message bytes, and the request to pass on. */
async function bound(
  req: AnyRequest,
): Promise<{ path: string; body: Uint8Array; req: AnyRequest }> {
  const path = `/${req.service.typeName}/${req.method.name}`;
  if (!req.stream) return { path, body: toBinary(req.method.input, req.message), req };
  const messages: Message[] = [];
  for await (const m of req.message) messages.push(m);
  // Client streaming is not used between nodes: a call with more than one message is bound
  // to all of them, in order.
  const body = Buffer.concat(messages.map((m) => toBinary(req.method.input, m)));
  async function* again() {
    yield* messages;
  }
  return { path, body, req: { ...req, message: again() } };
}

/** The caller's side: every call to `target` carries a fresh one-call credential. */
export function peerCredentials(auth: PeerAuth, target: string): Interceptor {
  return (next) => async (req) => {
    const b = await bound(req);
    b.req.header.set(PEER_HEADER, auth.control(target, b.path, b.body));
    return next(b.req as typeof req);
  };
}

/**
 * The callee's side: the calling node's name (and the request to pass on) when `credential`
 * is a genuine one-call credential for this node, this procedure and this message; else
 * undefined.
 */
export async function verifyPeerCall<R extends AnyRequest>(
  auth: PeerAuth,
  credential: string,
  req: R,
): Promise<{ node: string; req: R } | undefined> {
  const b = await bound(req);
  const node = auth.verifyControl(credential, b.path, b.body);
  return node === undefined ? undefined : { node, req: b.req as R };
}
