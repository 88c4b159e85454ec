// A scripted exchange on one TCP or Unix socket: write, then wait for the next n bytes or the next line.
// What the credential checks speak their protocols with, so they need no client library.

import { connect } from "node:net";

export type SocketTarget = { host: string; port: number } | { path: string };

export interface Io {
  write(data: Buffer | string): void;
  /** The next `n` bytes; rejects with ClosedError if the socket ends first. */
  bytes(n: number): Promise<Buffer>;
  /** The next line, without its CRLF. */
  line(): Promise<string>;
}

export class ClosedError extends Error {
  override readonly name = "ClosedError";
}

/** The connection could not be made; `code` is the socket's (ECONNREFUSED, ENOENT, EACCES …). */
export class ConnectError extends Error {
  override readonly name = "ConnectError";
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export class ConversationTimeout extends Error {
  override readonly name = "ConversationTimeout";
}

/** The peer ended the connection (closed or reset it). */
export function closedByServer(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return err instanceof ClosedError || code === "ECONNRESET" || code === "EPIPE";
}

/** Connects, runs `talk`, and always closes; rejects with ConnectError, ConversationTimeout or what `talk` threw. */
export async function converse<T>(target: SocketTarget, timeoutMs: number, talk: (io: Io) => Promise<T>): Promise<T> {
  const socket = "path" in target ? connect(target.path) : connect(target.port, target.host);
  let buffered = Buffer.alloc(0);
  let ended: Error | undefined;
  let wake: (() => void) | undefined;
  const end = (err: Error) => {
    ended ??= err;
    wake?.();
  };
  socket.on("connect", () => wake?.());
  socket.on("data", (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    wake?.();
  });
  socket.on("end", () => end(new ClosedError("the server closed the connection")));
  socket.on("close", () => end(new ClosedError("the connection closed")));
  socket.on("error", (e) => end(e));
  const until = async <R>(take: () => R | undefined): Promise<R> => {
    for (;;) {
      const got = take();
      if (got !== undefined) return got;
      if (ended) throw ended;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  };
  const io: Io = {
    write: (data) => void socket.write(data),
    bytes: (n) =>
      until(() => {
        if (buffered.length < n) return undefined;
        const out = buffered.subarray(0, n);
        buffered = buffered.subarray(n);
        return out;
      }),
    line: () =>
      until(() => {
        const at = buffered.indexOf("\r\n");
        if (at < 0) return undefined;
        const out = buffered.subarray(0, at).toString();
        buffered = buffered.subarray(at + 2);
        return out;
      }),
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConversationTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  const conversation = (async () => {
    try {
      await until(() => (socket.readyState === "open" ? true : undefined));
    } catch (err) {
      throw new ConnectError((err as Error).message, (err as NodeJS.ErrnoException).code);
    }
    return talk(io);
  })();
  try {
    return await Promise.race([conversation, timeout]);
  } finally {
    clearTimeout(timer);
    socket.destroy();
    conversation.catch(() => {}); // settles once the socket is destroyed; nobody waits for it any more
  }
}
