// Builds what the agent tells the world about itself: dea.heartbeat, dea.advertise, dea.shutdown,
// dea.find.droplet replies and droplet.exited. Pure functions of the instances and the config.

import type {
  HeartbeatTask,
  DeaAdvertise,
  DeaFindDropletReply,
  DeaHeartbeat,
  DeaShutdown,
  DropletExited,
  ExitReason,
} from "../bus/index.ts";
import type { Instance } from "./instance.ts";

export interface AgentIdentity {
  id: string;
  ip: string;
  zone: string;
  stacks: string[];
  memoryMb: number;
  diskMb: number;
}

/** The process type field of a message: absent for web, so a web instance's messages are as before. */
export const processTypeField = (i: Instance): { process_type?: string } => (i.processType === "web" ? {} : { process_type: i.processType });

/**
 * Every instance the health manager should know about: the alive ones, and those that just ended;
 * with `tasks`, the tasks this agent runs and those that ended lately (issue 17).
 */
export function buildHeartbeat(agentId: string, instances: Iterable<Instance>, tasks?: HeartbeatTask[]): DeaHeartbeat {
  const droplets = [];
  for (const i of instances)
    droplets.push({
      droplet: i.appId,
      version: i.version,
      instance: i.id,
      index: i.index,
      state: i.state,
      state_timestamp: i.stateTimestamp,
      ...processTypeField(i),
    });
  return tasks ? { dea: agentId, droplets, tasks } : { dea: agentId, droplets };
}

export function appIdToCount(instances: Iterable<Instance>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const i of instances) if (i.state === "STARTING" || i.state === "RUNNING") counts[i.appId] = (counts[i.appId] ?? 0) + 1;
  return counts;
}

/** `reserved`: what else holds memory and disk here (tasks), not counted as the apps' instances. */
export function buildAdvertise(agent: AgentIdentity, instances: Iterable<Instance>, reserved: Iterable<Instance> = []): DeaAdvertise {
  let mem = 0;
  let disk = 0;
  const list = [...instances];
  for (const i of [...list, ...reserved])
    if (i.alive) {
      mem += i.start.limits.mem;
      disk += i.start.limits.disk;
    }
  return {
    id: agent.id,
    ip: agent.ip,
    stacks: agent.stacks,
    available_memory: Math.max(0, agent.memoryMb - mem),
    available_disk: Math.max(0, agent.diskMb - disk),
    app_id_to_count: appIdToCount(list),
    placement_properties: { zone: agent.zone },
  };
}

export function buildShutdown(agentId: string, instances: Iterable<Instance>): DeaShutdown {
  return { id: agentId, app_id_to_count: appIdToCount(instances) };
}

export function buildFindDropletReply(agent: AgentIdentity, i: Instance, includeStats: boolean, now = Date.now()): DeaFindDropletReply {
  const reply: DeaFindDropletReply = {
    dea: agent.id,
    droplet: i.appId,
    version: i.version,
    instance: i.id,
    index: i.index,
    state: i.state,
    state_timestamp: i.stateTimestamp,
    ...processTypeField(i),
  };
  if (includeStats)
    reply.stats = {
      name: i.start.name,
      uris: i.uris,
      host: agent.ip,
      port: i.port,
      uptime: i.startedAt ? Math.max(0, (now - i.startedAt) / 1000) : 0,
      usage: { cpu: i.usage.cpu, mem: i.usage.mem, disk: i.usage.disk, time: now / 1000 },
      quotas: {
        mem: i.start.limits.mem * 1024 * 1024,
        disk: i.start.limits.disk * 1024 * 1024,
        fds: i.start.limits.fds,
      },
    };
  return reply;
}

export function buildExited(
  i: Instance,
  reason: ExitReason,
  exitStatus: number,
  description: string,
  now = Date.now(),
): DropletExited {
  return {
    droplet: i.appId,
    version: i.version,
    instance: i.id,
    index: i.index,
    reason,
    exit_status: exitStatus,
    exit_description: description,
    crash_timestamp: now / 1000,
    ...processTypeField(i),
  };
}
