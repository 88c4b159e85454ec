// The public contract of the bus: one type per message, Cloud Foundry's field names.
// This file imports nothing, so any component (or another language) can read it alone.

export const InstanceStates = ["STARTING", "RUNNING", "STOPPING", "STOPPED", "CRASHED"] as const;
export type InstanceState = (typeof InstanceStates)[number];

export const ExitReasons = ["CRASHED", "STOPPED", "DEA_SHUTDOWN", "DEA_EVACUATION"] as const;
export type ExitReason = (typeof ExitReasons)[number];

export const LogSources = ["APP", "STG", "RTR", "HEALTH", "CELL", "API"] as const;
export type LogSource = (typeof LogSources)[number];

export const LoadBalancing = ["round-robin", "least-connection"] as const;
export type LoadBalancingAlgorithm = (typeof LoadBalancing)[number];

export const HealthCheckTypes = ["port", "http", "process"] as const;
export type HealthCheckType = (typeof HealthCheckTypes)[number];

/** The process type an instance runs when a message names none: the one that gets the app's routes. */
export const WEB_PROCESS = "web";

/** A task's states as Cloud Foundry names them; agents report RUNNING, SUCCEEDED and FAILED. */
export const TaskStates = ["PENDING", "RUNNING", "CANCELING", "SUCCEEDED", "FAILED"] as const;
export type TaskState = (typeof TaskStates)[number];
export const TaskReportStates = ["RUNNING", "SUCCEEDED", "FAILED"] as const;
export type TaskReportState = (typeof TaskReportStates)[number];

/** router.register / router.unregister (gorouter's RegistryMessage). */
export interface RouterRegister {
  host: string;
  port: number;
  uris: string[];
  app?: string;
  private_instance_id?: string;
  private_instance_index?: string;
  tags?: Record<string, string>;
  stale_threshold_in_seconds?: number;
  options?: { loadbalancing?: LoadBalancingAlgorithm };
  route_service_url?: string;
  tls_port?: number;
  server_cert_domain_san?: string;
}

/** router.start, and the reply to router.greet. */
export interface RouterStart {
  id: string;
  hosts: string[];
  minimumRegisterIntervalInSeconds: number;
  pruneThresholdInSeconds: number;
}

/** Messages with no fields: router.greet, dea.locate, healthmanager.start, vcap.component.discover. */
export type Empty = Record<string, never>;

/** dea.advertise, every 5 s from each agent. */
export interface DeaAdvertise {
  id: string;
  /** base URL of the agent's own HTTP endpoint, if it has one */
  url?: string;
  /** the address instances on this agent are reachable at */
  ip: string;
  stacks: string[];
  available_memory: number;
  available_disk: number;
  app_id_to_count: Record<string, number>;
  placement_properties: { zone: string };
}

export interface HealthCheck {
  type: HealthCheckType;
  /** http only: the path probed */
  endpoint?: string;
  /** seconds to become healthy before the instance is declared crashed */
  timeout: number;
}

export interface ServiceBinding {
  name: string;
  label: string;
  plan: string;
  tags: string[];
  instance_guid: string;
  binding_guid: string;
  credentials: Record<string, unknown>;
}

/** dea.<id>.start: run one instance of an app. */
export interface DeaStart {
  /** app guid */
  droplet: string;
  /** droplet hash: the version of the code being run */
  version: string;
  index: number;
  name: string;
  uris: string[];
  droplet_uri: string;
  droplet_sha256: string;
  limits: { mem: number; disk: number; fds: number };
  env: Record<string, string>;
  services: ServiceBinding[];
  start_command: string;
  health_check: HealthCheck;
  vcap_application: Record<string, unknown>;
  stack?: string;
  /** the process type this instance runs (Procfile / manifest `processes:`); absent: web */
  process_type?: string;
}

/** Selects instances: dea.stop and dea.find.droplet. */
export interface DropletFilter {
  droplet: string;
  version?: string;
  instances?: string[];
  indices?: number[];
  states?: InstanceState[];
}

export type DeaStop = DropletFilter;

export interface DeaFindDroplet extends DropletFilter {
  include_stats?: boolean;
}

export interface InstanceStats {
  name: string;
  uris: string[];
  host: string;
  port: number;
  uptime: number;
  usage: { cpu: number; mem: number; disk: number; time: number };
  quotas: { mem: number; disk: number; fds: number };
}

export interface DeaFindDropletReply {
  dea: string;
  droplet: string;
  version: string;
  instance: string;
  index: number;
  state: InstanceState;
  state_timestamp: number;
  stats?: InstanceStats;
  /** absent: web */
  process_type?: string;
}

/** dea.update: the app's routes changed; re-register only what changed. */
export interface DeaUpdate {
  droplet: string;
  uris: string[];
  version?: string;
  /** the process type whose instances carry these routes; absent: web */
  process_type?: string;
}

export interface HeartbeatDroplet {
  droplet: string;
  version: string;
  instance: string;
  index: number;
  state: InstanceState;
  state_timestamp: number;
  /** absent: web */
  process_type?: string;
}

/** A task as an agent's heartbeat lists it: running, or ended within the last minutes (with how). */
export interface HeartbeatTask {
  guid: string;
  state: TaskReportState;
  exit_status?: number;
  failure_reason?: string;
}

export interface DeaHeartbeat {
  dea: string;
  droplets: HeartbeatDroplet[];
  /**
   * the tasks this agent runs, and those that ended in the last 5 minutes: a controller that missed a
   * task.state (it was restarting) learns the outcome here, and one the agent no longer lists is lost
   * (absent from agents older than issue 17)
   */
  tasks?: HeartbeatTask[];
}

export interface DeaShutdown {
  id: string;
  app_id_to_count: Record<string, number>;
}

export interface DropletExited {
  droplet: string;
  version: string;
  instance: string;
  index: number;
  reason: ExitReason;
  exit_status: number;
  exit_description: string;
  crash_timestamp: number;
  /** absent: web */
  process_type?: string;
}

/** staging.<id>.start: stage an app's package into a droplet. */
export interface StagingStart {
  app_id: string;
  task_id: string;
  properties: {
    buildpack?: string;
    start_command?: string;
    env?: Record<string, string>;
    resources?: { memory?: number; disk?: number };
  };
  download_uri: string;
  upload_uri: string;
}

/** The replies to staging.<id>.start: first `started`, then `done` (with `error` on failure). */
export interface StagingReply {
  task_id: string;
  phase: "started" | "done";
  detected_buildpack?: string;
  droplet_sha?: string;
  detected_start_command?: string;
  /** every process type the droplet knows (its Procfile's, and web: the start command) */
  process_types?: Record<string, string>;
  error?: string;
}

/** logs.<app>: one line of an app's log. */
export interface LogLine {
  app: string;
  source: LogSource;
  /** instance index, -1 when the line belongs to no instance */
  index: number;
  stream: "out" | "err";
  /** milliseconds since the epoch */
  ts: number;
  line: string;
  /** APP lines of an instance of a process type other than web: shown as APP/PROC/<TYPE>/<index> */
  process_type?: string;
  /** APP lines of a task: shown as APP/TASK/<name> */
  task?: string;
}

/** task.<agent>.start: run one task (a one-off command) from the app's droplet, once. */
export interface TaskStart {
  guid: string;
  name: string;
  /** app guid */
  droplet: string;
  app_name: string;
  sequence_id: number;
  droplet_uri: string;
  droplet_sha256: string;
  command: string;
  limits: { mem: number; disk: number; fds: number };
  env: Record<string, string>;
  services: ServiceBinding[];
  vcap_application: Record<string, unknown>;
  stack?: string;
}

/** task.cancel: every agent stops the task if it runs it. */
export interface TaskCancel {
  guid: string;
}

/** task.state: an agent tells the controller a task began or ended (with how). */
export interface TaskStateReport {
  dea: string;
  guid: string;
  /** app guid */
  droplet: string;
  state: TaskReportState;
  /** ended tasks: the exit status (-1 when it never ran or died by a signal) */
  exit_status?: number;
  /** FAILED tasks: why, in words */
  failure_reason?: string;
  /** milliseconds since the epoch */
  ts: number;
}

/** dea.logs.recent: request each agent's ring buffer for an app. */
export interface LogsRecent {
  droplet: string;
  limit?: number;
}

export interface LogsRecentReply {
  dea: string;
  lines: LogLine[];
}

/** Bus counters as a component reports them: messages per subscription subject. */
export interface BusCountersReport {
  accepted: Record<string, number>;
  rejected: Record<string, number>;
  handler_errors: Record<string, number>;
}

/**
 * vcap.component.announce, and the reply to vcap.component.discover (Cloud Foundry's component
 * discovery): who a component is, and its bus counters, so an operator or a test can see what every
 * process accepted and rejected without a port per component.
 */
export interface ComponentAnnounce {
  type: string;
  uuid: string;
  /** milliseconds since the epoch */
  start: number;
  /** seconds */
  uptime: number;
  /** every subscription subject, with its counts (zeros included) */
  bus: BusCountersReport;
}

/** Every message kind, by the name used to pick its decoder. */
export interface MessageKinds {
  "router.register": RouterRegister;
  "router.unregister": RouterRegister;
  "router.start": RouterStart;
  "router.greet": Empty;
  "dea.advertise": DeaAdvertise;
  "dea.locate": Empty;
  "dea.start": DeaStart;
  "dea.stop": DeaStop;
  "dea.update": DeaUpdate;
  "dea.find.droplet": DeaFindDroplet;
  "dea.find.droplet.reply": DeaFindDropletReply;
  "dea.heartbeat": DeaHeartbeat;
  "dea.shutdown": DeaShutdown;
  "dea.logs.recent": LogsRecent;
  "dea.logs.recent.reply": LogsRecentReply;
  "droplet.exited": DropletExited;
  "healthmanager.start": Empty;
  "staging.start": StagingStart;
  "staging.reply": StagingReply;
  logs: LogLine;
  "vcap.component.discover": Empty;
  "vcap.component.announce": ComponentAnnounce;
  "task.start": TaskStart;
  "task.cancel": TaskCancel;
  "task.state": TaskStateReport;
}

export type MessageKind = keyof MessageKinds;
