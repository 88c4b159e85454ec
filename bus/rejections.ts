// Counts accepted and rejected messages per subscription, and logs rejections once per burst so a
// flood of garbage cannot flood the log.

import type { Logger } from "./log.ts";

export interface BusCounters {
  accepted: Record<string, number>;
  rejected: Record<string, number>;
  handlerErrors: Record<string, number>;
}

const BURST_MS = 10_000;

/** Replies arrive on a fresh inbox per request: counted under one key, or the maps would grow forever. */
const counted = (subject: string): string => (subject.startsWith("_INBOX.") ? "_INBOX" : subject);

export class MessageCounters {
  readonly accepted = new Map<string, number>();
  readonly rejected = new Map<string, number>();
  readonly handlerErrors = new Map<string, number>();
  private readonly quietUntil = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Lists a subscription with zero counts, so a snapshot names every subject listened to. */
  watch(rawSubject: string): void {
    const subject = counted(rawSubject);
    if (!this.accepted.has(subject)) this.accepted.set(subject, 0);
    if (!this.rejected.has(subject)) this.rejected.set(subject, 0);
  }

  accept(rawSubject: string): void {
    const subject = counted(rawSubject);
    this.accepted.set(subject, (this.accepted.get(subject) ?? 0) + 1);
  }

  reject(rawSubject: string, error: string): void {
    const subject = counted(rawSubject);
    this.rejected.set(subject, (this.rejected.get(subject) ?? 0) + 1);
    const now = this.now();
    const until = this.quietUntil.get(subject) ?? 0;
    if (now < until) {
      this.suppressed.set(subject, (this.suppressed.get(subject) ?? 0) + 1);
      return;
    }
    const hidden = this.suppressed.get(subject) ?? 0;
    this.suppressed.set(subject, 0);
    this.quietUntil.set(subject, now + BURST_MS);
    this.log.warn("invalid message rejected", {
      subject,
      error,
      ...(hidden > 0 ? { suppressed_since_last: hidden } : {}),
    });
  }

  handlerFailed(rawSubject: string, error: unknown): void {
    const subject = counted(rawSubject);
    this.handlerErrors.set(subject, (this.handlerErrors.get(subject) ?? 0) + 1);
    this.log.error("message handler failed", { subject, error: error instanceof Error ? error.message : String(error) });
  }

  snapshot(): BusCounters {
    return {
      accepted: Object.fromEntries(this.accepted),
      rejected: Object.fromEntries(this.rejected),
      handlerErrors: Object.fromEntries(this.handlerErrors),
    };
  }
}
