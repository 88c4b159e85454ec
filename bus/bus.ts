// The Bus every component talks through: typed publish/subscribe/request over a byte Transport
// (NATS in production, in-memory in unit tests). Every received message is validated before a
// handler sees it; a bad one is counted and logged with its subject, never thrown.

import { decode, encode } from "./codec.ts";
import type { MessageKind, MessageKinds } from "./messages.ts";
import { MessageCounters, type BusCounters } from "./rejections.ts";
import type { Logger } from "./log.ts";

export interface MessageMeta {
  subject: string;
  reply?: string;
}

export type Handler<K extends MessageKind> = (message: MessageKinds[K], meta: MessageMeta) => void | Promise<void>;

export interface Subscription {
  unsubscribe(): void;
}

/** Connection events, as a tagged union on `type`. */
export type BusStatus = { type: "disconnect" } | { type: "reconnect" } | { type: "error"; error: Error };

/** What a transport must do: move bytes. Implemented over NATS and in memory. */
export interface Transport {
  publish(subject: string, data: Uint8Array, reply?: string): void;
  subscribe(
    subject: string,
    onMessage: (data: Uint8Array, subject: string, reply: string | undefined) => void,
    queue?: string,
  ): () => void;
  inbox(): string;
  flush(): Promise<void>;
  close(): Promise<void>;
  onStatus(listener: (status: BusStatus) => void): void;
}

export interface RequestOptions {
  timeoutMs: number;
}

export interface Bus {
  publish<K extends MessageKind>(subject: string, kind: K, message: MessageKinds[K], opts?: { reply?: string }): void;
  subscribe<K extends MessageKind>(subject: string, kind: K, handler: Handler<K>, opts?: { queue?: string }): Subscription;
  /**
   * Hands payloads over undecoded, for a consumer that decodes them later in its own time slices
   * (the router, so a burst of registrations never stalls requests). The bytes may be reused after
   * the call: copy them to keep them. Decode with `decode(subject, …)` so they are counted.
   */
  subscribeRaw(subject: string, handler: (data: Uint8Array, meta: MessageMeta) => void, opts?: { queue?: string }): Subscription;
  /** Decodes and validates bytes received on `subject`, counting them as accepted or rejected there; undefined if invalid. */
  decode<K extends MessageKind>(subject: string, kind: K, data: Uint8Array): MessageKinds[K] | undefined;
  /** The first valid reply, or a RequestTimeoutError. */
  request<K extends MessageKind, R extends MessageKind>(
    subject: string,
    kind: K,
    message: MessageKinds[K],
    replyKind: R,
    opts: RequestOptions,
  ): Promise<MessageKinds[R]>;
  /** Every valid reply that arrives within the time (or until `max` replies). */
  requestMany<K extends MessageKind, R extends MessageKind>(
    subject: string,
    kind: K,
    message: MessageKinds[K],
    replyKind: R,
    opts: RequestOptions & { max?: number },
  ): Promise<MessageKinds[R][]>;
  /** Publishes bytes as they are: for tests that send garbage, and for relaying. */
  publishRaw(subject: string, data: Uint8Array, reply?: string): void;
  inbox(): string;
  onStatus(listener: (status: BusStatus) => void): void;
  counters(): BusCounters;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
  constructor(readonly subject: string, timeoutMs: number) {
    super(`no reply on ${subject} within ${timeoutMs} ms`);
  }
}

export function createBus(transport: Transport, log: Logger): Bus {
  const counters = new MessageCounters(log);

  const decodeCounted = <K extends MessageKind>(subject: string, kind: K, data: Uint8Array): MessageKinds[K] | undefined => {
    try {
      const message = decode(kind, data);
      counters.accept(subject);
      return message;
    } catch (err) {
      counters.reject(subject, (err as Error).message);
      return undefined;
    }
  };

  const subscribeRaw = (subject: string, handler: (data: Uint8Array, meta: MessageMeta) => void, opts?: { queue?: string }): Subscription => {
    counters.watch(subject);
    const unsubscribe = transport.subscribe(
      subject,
      (data, actualSubject, reply) => {
        try {
          handler(data, { subject: actualSubject, reply });
        } catch (err) {
          counters.handlerFailed(subject, err);
        }
      },
      opts?.queue,
    );
    return { unsubscribe };
  };

  const subscribe = <K extends MessageKind>(subject: string, kind: K, handler: Handler<K>, opts?: { queue?: string }): Subscription =>
    subscribeRaw(
      subject,
      (data, meta) => {
        const message = decodeCounted(subject, kind, data);
        if (message === undefined) return;
        const result = handler(message, meta);
        if (result instanceof Promise) result.catch((err) => counters.handlerFailed(subject, err));
      },
      opts,
    );

  const publish = <K extends MessageKind>(subject: string, kind: K, message: MessageKinds[K], opts?: { reply?: string }) =>
    transport.publish(subject, encode(kind, message), opts?.reply);

  const requestMany = <K extends MessageKind, R extends MessageKind>(
    subject: string,
    kind: K,
    message: MessageKinds[K],
    replyKind: R,
    opts: RequestOptions & { max?: number },
  ): Promise<MessageKinds[R][]> =>
    new Promise((resolve) => {
      const replies: MessageKinds[R][] = [];
      const inbox = transport.inbox();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        if (timer) clearTimeout(timer);
        sub.unsubscribe();
        resolve(replies);
      };
      const sub = subscribe(inbox, replyKind, (reply) => {
        replies.push(reply);
        if (opts.max !== undefined && replies.length >= opts.max) finish();
      });
      timer = setTimeout(finish, opts.timeoutMs);
      publish(subject, kind, message, { reply: inbox });
    });

  return {
    publish,
    subscribe,
    subscribeRaw,
    decode: decodeCounted,
    requestMany,
    async request(subject, kind, message, replyKind, opts) {
      const [reply] = await requestMany(subject, kind, message, replyKind, { ...opts, max: 1 });
      if (reply === undefined) throw new RequestTimeoutError(subject, opts.timeoutMs);
      return reply;
    },
    publishRaw: (subject, data, reply) => transport.publish(subject, data, reply),
    inbox: () => transport.inbox(),
    onStatus: (listener) => transport.onStatus(listener),
    counters: () => counters.snapshot(),
    flush: () => transport.flush(),
    close: () => transport.close(),
  };
}
