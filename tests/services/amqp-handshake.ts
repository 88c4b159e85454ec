// The start of an AMQP 0-9-1 connection over a raw socket (no AMQP client is installed): protocol header,
// Connection.Start → Start-Ok (PLAIN), Tune → Tune-Ok, Open(vhost) → Open-Ok. Enough to prove what a
// broker's credentials can do on the wire, and to watch an open connection being closed by the server.

import { connect, type Socket } from "node:net";

const FRAME_METHOD = 1;
const FRAME_END = 0xce;
const method = (cls: number, id: number) => cls * 65536 + id;
const CONNECTION_START = method(10, 10);
const CONNECTION_TUNE = method(10, 30);
const CONNECTION_OPEN_OK = method(10, 41);
const CONNECTION_CLOSE = method(10, 50);

export interface AmqpSession {
  /** "open": logged in and the vhost opened; "refused": the broker closed before Open-Ok (why in `detail`). */
  outcome: "open" | "refused";
  detail: string;
  socket: Socket;
  /** Resolves with the server's reason when it closes the connection (Connection.Close or a dropped socket). */
  closed: Promise<string>;
}

function shortstr(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length]), b]);
}

function longstr(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function frame(cls: number, id: number, args: Buffer): Buffer {
  const payload = Buffer.concat([Buffer.from([cls >> 8, cls & 255, id >> 8, id & 255]), args]);
  const head = Buffer.alloc(7);
  head.writeUInt8(FRAME_METHOD, 0);
  head.writeUInt16BE(0, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([FRAME_END])]);
}

/** Reads method frames off a socket; `next()` resolves with the next one or rejects when the socket ends. */
function frameReader(socket: Socket) {
  let buf = Buffer.alloc(0);
  const waiting: { resolve: (f: { method: number; args: Buffer }) => void; reject: (e: Error) => void }[] = [];
  const queued: { method: number; args: Buffer }[] = [];
  let ended: Error | undefined;
  socket.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 7) {
      const size = buf.readUInt32BE(3);
      if (buf.length < 8 + size) break;
      const type = buf.readUInt8(0);
      const payload = buf.subarray(7, 7 + size);
      buf = buf.subarray(8 + size);
      if (type !== FRAME_METHOD) continue; // heartbeats
      const f = { method: method(payload.readUInt16BE(0), payload.readUInt16BE(2)), args: payload.subarray(4) };
      const w = waiting.shift();
      if (w) w.resolve(f);
      else queued.push(f);
    }
  });
  const end = (why: string) => {
    ended ??= new Error(why);
    for (const w of waiting.splice(0)) w.reject(ended);
  };
  socket.on("end", () => end("the broker closed the socket"));
  socket.on("close", () => end("the socket closed"));
  socket.on("error", (e) => end(`socket error: ${e.message}`));
  return {
    next(): Promise<{ method: number; args: Buffer }> {
      const f = queued.shift();
      if (f) return Promise.resolve(f);
      if (ended) return Promise.reject(ended);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
  };
}

function closeReason(args: Buffer): string {
  const code = args.readUInt16BE(0);
  const len = args.readUInt8(2);
  return `${code} ${args.subarray(3, 3 + len).toString()}`;
}

/** Opens an AMQP connection with the credentials and vhost of an amqp:// URI (as AMQP_URL carries them). */
export async function amqpOpen(uri: string, timeoutMs = 10_000): Promise<AmqpSession> {
  const u = new URL(uri);
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  const vhost = decodeURIComponent(u.pathname.slice(1)) || "/";
  const socket = connect(Number(u.port || 5672), u.hostname);
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error("AMQP handshake timed out")));
  const frames = frameReader(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
  const session = (outcome: AmqpSession["outcome"], detail: string): AmqpSession => {
    const closed = (async () => {
      for (;;) {
        const f = await frames.next().catch((e: Error) => ({ method: -1, args: Buffer.from(e.message) }));
        if (f.method === -1) return f.args.toString();
        if (f.method === CONNECTION_CLOSE) return closeReason(f.args);
      }
    })();
    return { outcome, detail, socket, closed };
  };
  try {
    const start = await frames.next();
    if (start.method !== CONNECTION_START) throw new Error(`expected Connection.Start, got method ${start.method}`);
    // capabilities.authentication_failure_close: a refused login gets a Connection.Close (403) at once,
    // instead of the socket closing silently after 3 s.
    const capability = Buffer.concat([shortstr("authentication_failure_close"), Buffer.from("t"), Buffer.from([1])]);
    const capabilities = Buffer.concat([shortstr("capabilities"), Buffer.from("F"), longstr(capability)]);
    socket.write(frame(10, 11, Buffer.concat([longstr(capabilities), shortstr("PLAIN"), longstr(Buffer.from(`\0${user}\0${pass}`)), shortstr("en_US")])));
    const tune = await frames.next();
    if (tune.method === CONNECTION_CLOSE) return session("refused", closeReason(tune.args));
    if (tune.method !== CONNECTION_TUNE) throw new Error(`expected Connection.Tune, got method ${tune.method}`);
    const channelMax = tune.args.readUInt16BE(0);
    const frameMax = tune.args.readUInt32BE(2);
    const tuneOk = Buffer.alloc(8);
    tuneOk.writeUInt16BE(channelMax, 0);
    tuneOk.writeUInt32BE(frameMax, 2);
    tuneOk.writeUInt16BE(0, 6); // no heartbeats: the probe sends nothing while it waits
    socket.write(frame(10, 31, tuneOk));
    socket.write(frame(10, 40, Buffer.concat([shortstr(vhost), shortstr(""), Buffer.from([0])])));
    const open = await frames.next();
    if (open.method === CONNECTION_CLOSE) return session("refused", closeReason(open.args));
    if (open.method !== CONNECTION_OPEN_OK) throw new Error(`expected Connection.Open-Ok, got method ${open.method}`);
    socket.setTimeout(0);
    return session("open", "Open-Ok");
  } catch (err) {
    // A refused login closes the socket without a Close frame (the client did not ask for one).
    if (/closed|socket/.test((err as Error).message)) return session("refused", (err as Error).message);
    socket.destroy();
    throw err;
  }
}
