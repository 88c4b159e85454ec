// Records of the instances this agent started, one JSON file each in <data>/records, so that an
// agent that restarts can find processes it left behind and end them (see agent/README.md).

import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DeaStart, InstanceState, TaskStart } from "../bus/index.ts";

export interface InstanceRecord {
  id: string;
  pid: number;
  /** the process's start time in clock ticks, to tell it from a later process with the same pid */
  startTicks?: number;
  state: InstanceState;
  port: number;
  /** the uid only this instance ran as, if it had one (uid-pool.ts) */
  uid?: number;
  start: DeaStart;
  /** set when the record is a task's (issue 17): a restarted agent reports it FAILED */
  task?: TaskStart;
}

export class InstanceStore {
  constructor(private readonly dir: string) {
    // records hold start orders, and so every app's environment and service credentials: root's only
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  save(record: InstanceRecord): void {
    const path = join(this.dir, `${record.id}.json`);
    writeFileSync(`${path}.tmp`, JSON.stringify(record), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  remove(id: string): void {
    rmSync(join(this.dir, `${id}.json`), { force: true });
  }

  list(): InstanceRecord[] {
    const out: InstanceRecord[] = [];
    for (const f of readdirSync(this.dir))
      if (f.endsWith(".json"))
        try {
          out.push(JSON.parse(readFileSync(join(this.dir, f), "utf8")) as InstanceRecord);
        } catch {
          rmSync(join(this.dir, f), { force: true });
        }
    return out;
  }
}
