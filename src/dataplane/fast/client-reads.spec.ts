import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ClientReads } from "./client-reads.ts";

const servers: Server[] = [];
const sockets: Socket[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

/** An accepted socket whose reads `install` takes over, and the client connected to it. */
async function accepted(install: (socket: Socket) => void): Promise<Socket> {
  const server = createServer((socket) => {
    sockets.push(socket);
    install(socket);
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const client = connect((server.address() as { port: number }).port, "127.0.0.1");
  sockets.push(client);
  await once(client, "connect");
  return client;
}

async function until(condition: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 20_000; !condition(); ) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("ClientReads", () => {
  it("reads an accepted socket into one reused buffer, a new one only after retained()", async () => {
    const seen: { text: string; owned: boolean; buffer: ArrayBufferLike }[] = [];
    let reads: ClientReads | undefined;
    let data = 0;
    const client = await accepted((socket) => {
      socket.on("data", () => data++);
      reads = ClientReads.install(socket, (chunk) => {
        seen.push({ text: chunk.toString(), owned: reads!.owns(chunk), buffer: chunk.buffer });
        if (seen.length === 2) reads!.retained();
      });
    });
    expect(reads).toBeDefined(); // this Node has what install() needs
    for (const word of ["one", "two", "three"]) {
      const before = seen.length;
      client.write(word);
      await until(() => seen.length > before);
    }
    expect(seen.map((s) => s.text).join("")).toBe("onetwothree");
    expect(seen.every((s) => s.owned)).toBe(true);
    expect(seen[1]!.buffer).toBe(seen[0]!.buffer);
    expect(seen[2]!.buffer).not.toBe(seen[1]!.buffer); // retained: the next read got another
    expect(data).toBe(0); // no 'data' machinery while the reads are ours
  });

  it("after release(), reads reach 'data' as copies, with Readable's backpressure", async () => {
    let reads: ClientReads | undefined;
    let server: Socket | undefined;
    const client = await accepted((socket) => {
      server = socket;
      reads = ClientReads.install(socket, () => {});
    });
    await until(() => server !== undefined);
    reads!.release();
    const chunks: Buffer[] = [];
    server!.pause();
    server!.on("data", (chunk: Buffer) => chunks.push(chunk));
    // More than Readable's buffer holds: reading stops, then goes on once it is consumed.
    const payload = Buffer.alloc(4 * 1024 * 1024, "x");
    client.end(payload);
    await new Promise((r) => setTimeout(r, 200));
    server!.resume();
    await once(server!, "end");
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(payload.length);
    expect(got.equals(payload)).toBe(true);
    expect(chunks.some((c) => reads!.owns(c))).toBe(false);
  });

  it("after release(), a reader that stops the handle (the native relay's hand-over) stays stopped", async () => {
    let reads: ClientReads | undefined;
    let server: Socket | undefined;
    await accepted((socket) => {
      server = socket;
      reads = ClientReads.install(socket, () => {});
    });
    await until(() => server !== undefined);
    reads!.release();
    // As proxy-upgrade.ts's handOver stops Node reading a socket it gives away.
    const s = server as unknown as {
      _handle: { reading: boolean; readStop(): number };
      _read(): void;
    };
    s._read = () => {};
    s._handle.reading = false;
    s._handle.readStop();
    server!.read(0);
    server!.resume();
    server!.pause();
    server!.resume();
    expect(s._handle.reading).toBe(false);
  });
});
