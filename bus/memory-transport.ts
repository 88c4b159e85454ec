// An in-process Transport with NATS subject semantics (`*` one token, `>` the rest, queue groups),
// for unit tests of components that talk over the bus. Delivery is asynchronous, as on NATS.

import type { BusStatus, Transport } from "./bus.ts";

interface Sub {
  pattern: string[];
  queue?: string;
  deliver: (data: Uint8Array, subject: string, reply: string | undefined) => void;
}

export function subjectMatches(pattern: string[], subject: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === ">") return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== "*" && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

/** One shared "server": every transport made from it sees the others' messages. */
export class MemoryBroker {
  private readonly subs = new Set<Sub>();
  private inboxSeq = 0;
  private queueTurn = 0;
  readonly published: { subject: string; data: Uint8Array }[] = [];

  transport(): Transport {
    const listeners: ((s: BusStatus) => void)[] = [];
    const mine = new Set<Sub>();
    return {
      publish: (subject, data, reply) => this.publish(subject, data, reply),
      subscribe: (subject, deliver, queue) => {
        const sub: Sub = { pattern: subject.split("."), queue, deliver };
        this.subs.add(sub);
        mine.add(sub);
        return () => {
          this.subs.delete(sub);
          mine.delete(sub);
        };
      },
      inbox: () => `_INBOX.mem.${++this.inboxSeq}`,
      flush: () => new Promise((r) => setTimeout(r, 0)),
      close: async () => {
        for (const s of mine) this.subs.delete(s);
        mine.clear();
      },
      onStatus: (l) => void listeners.push(l),
    };
  }

  private publish(subject: string, data: Uint8Array, reply?: string): void {
    this.published.push({ subject, data });
    const tokens = subject.split(".");
    const groups = new Map<string, Sub[]>();
    const targets: Sub[] = [];
    for (const s of this.subs) {
      if (!subjectMatches(s.pattern, tokens)) continue;
      if (s.queue === undefined) targets.push(s);
      else groups.set(s.queue, [...(groups.get(s.queue) ?? []), s]);
    }
    for (const members of groups.values()) targets.push(members[this.queueTurn++ % members.length]!);
    const copy = data.slice();
    for (const s of targets) queueMicrotask(() => s.deliver(copy, subject, reply));
  }
}
