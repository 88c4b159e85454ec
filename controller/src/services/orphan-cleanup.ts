// Retries, in the background, the broker deletes that orphan mitigation could not finish: a provision or
// bind failed, and so did the deprovision/unbind meant to clean it up (BrokerClientError.orphan "left").
// Without this the broker keeps a half-made database or user forever. The list lives in the database
// (service_orphans), so a restarted controller resumes it; the delay doubles from initialMs to maxMs and
// retries never stop (a broker may be down for days). A timer runs only while orphans exist.

import type { Logger } from "../../../bus/index.ts";
import type { BrokerClient } from "../../broker/index.ts";
import type { BrokerRecord, OrphanRecord, ServiceStore } from "./service-store.ts";

export interface OrphanRetryOptions {
  /** The first retry comes this long after the failed cleanup (default 30 s). */
  initialMs?: number;
  /** The delay doubles up to this (default 30 min). */
  maxMs?: number;
}

/** The delay before retry number `failures + 1`, after `failures` failed retries. Pure. */
export function orphanRetryDelay(failures: number, opts: OrphanRetryOptions = {}): number {
  const initial = opts.initialMs ?? 30_000;
  const max = opts.maxMs ?? 30 * 60_000;
  return Math.min(initial * 2 ** Math.min(failures, 40), max);
}

export interface OrphanCleanupDeps {
  services: ServiceStore;
  client: (broker: BrokerRecord) => Promise<BrokerClient>;
  log: Logger;
  /** Runs a sweep as tracked background work (the gateway's `settled()` waits for it). */
  run: (what: string, work: () => Promise<void>) => void;
}

export class OrphanCleanup {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;
  private sweeping = false;
  private stopped = false;

  constructor(
    private readonly deps: OrphanCleanupDeps,
    private readonly opts: OrphanRetryOptions = {},
  ) {}

  /** Remembers an orphan the broker may still hold; its first retry comes after `initialMs`. */
  async record(kind: OrphanRecord["kind"], guid: string, message: string): Promise<void> {
    const now = Date.now();
    const next = now + orphanRetryDelay(0, this.opts);
    await this.deps.services.insertOrphan({ guid, kind, message, attempts: 0, next_attempt_at: next, last_error: null, created_at: now });
    this.schedule(next);
  }

  /** The resource was deleted at the broker by other means (the user's delete): nothing to retry. */
  async forget(guid: string): Promise<void> {
    await this.deps.services.deleteOrphan(guid);
  }

  /** At boot: picks up the orphans a previous controller left. */
  async resume(): Promise<void> {
    const at = await this.deps.services.nextOrphanAt();
    if (at !== undefined) this.schedule(at);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.deps.run("retry orphaned broker resources", () => this.sweep());
    }, Math.max(0, at - Date.now()));
    // Never the reason a process stays up: a restart resumes from the table.
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Retries every orphan that is due, then sleeps until the next one is. */
  async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      for (const orphan of await this.deps.services.orphansDue(Date.now())) {
        if (this.stopped) return;
        await this.retry(orphan);
      }
    } finally {
      this.sweeping = false;
    }
    const next = await this.deps.services.nextOrphanAt();
    if (next !== undefined) this.schedule(next);
  }

  private async retry(orphan: OrphanRecord): Promise<void> {
    const s = this.deps.services;
    const binding = orphan.kind === "binding" ? await s.binding(orphan.guid) : undefined;
    const ctx = await s.instanceContext(orphan.kind === "binding" ? (binding?.instance_guid ?? "") : orphan.guid);
    // The record is gone: the user's delete reached the broker, so nothing is left there.
    if (!ctx || (orphan.kind === "binding" && !binding)) return s.deleteOrphan(orphan.guid);
    const busy = orphan.kind === "binding" ? binding!.last_operation.state === "in progress" : ctx.instance.last_operation.state === "in progress";
    if (busy) {
      // a delete the user started is talking to the broker now; look again later without counting a failure
      await s.rescheduleOrphan(orphan.guid, orphan.attempts, Date.now() + orphanRetryDelay(0, this.opts), orphan.last_error);
      return;
    }
    const ids = { instanceId: ctx.instance.guid, serviceId: ctx.offering.broker_service_id, planId: ctx.plan.broker_plan_id };
    try {
      const client = await this.deps.client(ctx.broker);
      if (orphan.kind === "binding") await client.unbind({ ...ids, bindingId: orphan.guid });
      else await client.deprovision(ids);
    } catch (err) {
      const failures = orphan.attempts + 1;
      const delay = orphanRetryDelay(failures, this.opts);
      await s.rescheduleOrphan(orphan.guid, failures, Date.now() + delay, (err as Error).message);
      this.deps.log.warn("orphaned broker resource still not removed", { kind: orphan.kind, guid: orphan.guid, attempts: failures, retry_in_ms: delay, error: (err as Error).message });
      return;
    }
    await s.deleteOrphan(orphan.guid);
    const description = `${orphan.message} (the broker's partial resource was removed on a later attempt)`;
    // Only a record still showing the failed create is rewritten; a newer operation keeps its own words.
    if (orphan.kind === "binding" && binding!.last_operation.type === "create" && binding!.last_operation.state === "failed") {
      await s.setBindingOperation(orphan.guid, { type: "create", state: "failed", description });
    } else if (orphan.kind === "instance" && ctx.instance.last_operation.type === "create" && ctx.instance.last_operation.state === "failed") {
      await s.setInstanceOperation(orphan.guid, { type: "create", state: "failed", description });
    }
    this.deps.log.info("orphaned broker resource removed", { kind: orphan.kind, guid: orphan.guid, attempts: orphan.attempts + 1 });
  }
}
