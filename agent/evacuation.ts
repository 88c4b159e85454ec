// What an evacuating agent waits for: a replacement of each instance it announced as leaving
// (DEA_EVACUATION), heard as a router.register or a RUNNING heartbeat entry for the same app and
// index from anyone but this agent. Pure: the agent feeds it the messages and races `done` against
// SKIFF_AGENT_EVACUATION_MS.

import type { DeaHeartbeat, RouterRegister } from "../bus/index.ts";

export interface Evacuee {
  appId: string;
  index: number;
  instanceId: string;
  /** absent: web (the only type that registers routes) */
  processType?: string;
}

export class ReplacementWatch {
  private readonly waiting = new Map<string, Evacuee>();
  private readonly ours: ReadonlySet<string>;
  private resolve!: () => void;
  /** resolves once every evacuee's replacement was heard */
  readonly done = new Promise<void>((r) => (this.resolve = r));

  constructor(
    evacuees: readonly Evacuee[],
    private readonly agentId: string,
  ) {
    for (const e of evacuees) this.waiting.set(key(e.appId, e.index, e.processType), e);
    this.ours = new Set(evacuees.map((e) => e.instanceId));
    this.settle();
  }

  get pending(): number {
    return this.waiting.size;
  }

  onRegister(m: RouterRegister): void {
    if (!m.app || m.private_instance_index === undefined) return;
    if (m.private_instance_id !== undefined && this.ours.has(m.private_instance_id)) return; // our own re-registration
    this.heard(m.app, Number(m.private_instance_index), "web");
  }

  onHeartbeat(m: DeaHeartbeat): void {
    if (m.dea === this.agentId) return;
    for (const d of m.droplets) if (d.state === "RUNNING") this.heard(d.droplet, d.index, d.process_type);
  }

  private heard(appId: string, index: number, processType?: string): void {
    if (this.waiting.delete(key(appId, index, processType))) this.settle();
  }

  private settle(): void {
    if (this.waiting.size === 0) this.resolve();
  }
}

const key = (appId: string, index: number, processType = "web") => `${appId}\u0000${processType}\u0000${index}`;
