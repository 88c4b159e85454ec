// What the controller concludes about tasks it has not heard end (issue 17). Pure: the tracker feeds
// it the unfinished tasks, which agents are alive, and each agent's last heartbeat, and applies what
// it returns. An agent reports a task's end on task.state; these rules cover the cases where that
// message never comes: the agent died, restarted, or the controller was down when it was sent.

import type { HeartbeatTask, TaskState } from "../../../bus/index.ts";
import type { TaskRecord } from "./task-store.ts";

/** A heartbeat must be this much newer than a task's last change before its silence about the task counts. */
export const HEARTBEAT_GRACE_MS = 2_000;
/** A task missing from its agent's heartbeats this long (a task.state may be on its way) is lost. */
export const MISSING_CONFIRM_MS = 3_000;
/**
 * An agent the registry no longer holds (unheard for its 10 s TTL) has taken its tasks with it; a
 * controller that just started first gives agents this long to be heard.
 */
export const AGENT_LOST_MS = 15_000;
/** A cancel the agent never confirmed ends the task anyway after this long. */
export const CANCEL_TIMEOUT_MS = 30_000;
/** A task never handed to an agent (the controller stopped in between) fails after this long. */
export const UNPLACED_MS = 30_000;

export interface AgentTasks {
  /** our clock when the heartbeat arrived */
  heardAt: number;
  tasks: ReadonlyMap<string, HeartbeatTask>;
}

export interface TaskDecision {
  guid: string;
  to: Extract<TaskState, "RUNNING" | "SUCCEEDED" | "FAILED">;
  exitStatus?: number;
  reason?: string;
}

export interface ReconcileInput {
  active: readonly TaskRecord[];
  isLive(agent: string): boolean;
  /** the last heartbeat that listed tasks, per agent */
  heartbeats: ReadonlyMap<string, AgentTasks>;
  /** task guid → when its agent's heartbeat first left it out; kept by the caller, updated here */
  missingSince: Map<string, number>;
  now: number;
  /** when this tracker started: agents are given AGENT_LOST_MS from then to be heard again */
  since: number;
}

export function reconcileTasks(input: ReconcileInput): TaskDecision[] {
  const out: TaskDecision[] = [];
  const { now } = input;
  const activeGuids = new Set(input.active.map((t) => t.guid));
  for (const guid of input.missingSince.keys()) if (!activeGuids.has(guid)) input.missingSince.delete(guid);
  for (const t of input.active) {
    const agent = t.agent_id;
    if (!agent) {
      if (now - t.created_at > UNPLACED_MS) out.push({ guid: t.guid, to: "FAILED", reason: "the task was never handed to an agent (the controller stopped while placing it)" });
      continue;
    }
    const hb = input.heartbeats.get(agent);
    if (hb && hb.heardAt >= t.updated_at + HEARTBEAT_GRACE_MS) {
      const seen = hb.tasks.get(t.guid);
      if (seen) {
        input.missingSince.delete(t.guid);
        if (seen.state === "SUCCEEDED" || seen.state === "FAILED") {
          out.push({ guid: t.guid, to: seen.state, exitStatus: seen.exit_status, reason: seen.failure_reason });
          continue;
        }
        if (t.state === "PENDING") out.push({ guid: t.guid, to: "RUNNING" });
      } else {
        const since = input.missingSince.get(t.guid);
        if (since === undefined) input.missingSince.set(t.guid, hb.heardAt);
        else if (now - since >= MISSING_CONFIRM_MS) {
          out.push({ guid: t.guid, to: "FAILED", reason: `agent ${agent} no longer runs the task (it restarted, or never received it)` });
          continue;
        }
      }
    }
    if (!input.isLive(agent) && now - input.since > AGENT_LOST_MS && now - t.updated_at > HEARTBEAT_GRACE_MS) {
      out.push({ guid: t.guid, to: "FAILED", reason: `agent ${agent} stopped responding while the task ran` });
      continue;
    }
    if (t.state === "CANCELING" && now - t.updated_at > CANCEL_TIMEOUT_MS)
      out.push({ guid: t.guid, to: "FAILED", reason: `cancelled (agent ${agent} did not confirm that it stopped)` });
  }
  return out;
}
