// Relays `logs.<app>` to HTTP clients by long polling: while someone polls an app, its lines are
// kept in a numbered ring buffer; a poll returns the lines after the number it last saw, waiting up
// to a limit for new ones. Polls survive proxies and reconnects that cut long-lived streams.

import { logsSubject, type Bus, type LogLine, type Subscription } from "../../bus/index.ts";

interface Channel {
  sub: Subscription;
  lines: LogLine[];
  /** sequence number of lines[0] */
  first: number;
  lastPoll: number;
  waiters: Set<() => void>;
}

export class LogRelay {
  private readonly channels = new Map<string, Channel>();
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(private readonly bus: Bus, private readonly keep = 2000, private readonly idleMs = 60_000) {
    this.sweeper = setInterval(() => this.sweep(), 10_000);
  }

  private channel(app: string): Channel {
    let ch = this.channels.get(app);
    if (!ch) {
      const c: Channel = { sub: undefined as unknown as Subscription, lines: [], first: 0, lastPoll: Date.now(), waiters: new Set() };
      c.sub = this.bus.subscribe(logsSubject(app), "logs", (l) => {
        c.lines.push(l);
        if (c.lines.length > this.keep) {
          c.lines.shift();
          c.first++;
        }
        for (const w of c.waiters) w();
        c.waiters.clear();
      });
      this.channels.set(app, (ch = c));
    }
    ch.lastPoll = Date.now();
    return ch;
  }

  /**
   * Lines after `after` (a number from an earlier poll); without `after`, starts listening and
   * returns the current position. Waits up to waitMs when there is nothing new.
   */
  async poll(app: string, after: number | undefined, waitMs: number): Promise<{ next: number; lines: LogLine[] }> {
    const ch = this.channel(app);
    const end = () => ch.first + ch.lines.length;
    if (after === undefined) return { next: end(), lines: [] };
    if (end() <= after && waitMs > 0) {
      let wake!: () => void;
      const woke = new Promise<void>((r) => (wake = r));
      ch.waiters.add(wake);
      const timer = setTimeout(wake, waitMs);
      await woke;
      clearTimeout(timer);
      ch.waiters.delete(wake);
    }
    ch.lastPoll = Date.now();
    const from = Math.max(after, ch.first);
    return { next: end(), lines: ch.lines.slice(from - ch.first) };
  }

  private sweep(now = Date.now()): void {
    for (const [app, ch] of this.channels) {
      if (ch.waiters.size === 0 && now - ch.lastPoll > this.idleMs) {
        ch.sub.unsubscribe();
        this.channels.delete(app);
      }
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const ch of this.channels.values()) {
      ch.sub.unsubscribe();
      for (const w of ch.waiters) w();
    }
    this.channels.clear();
  }
}
