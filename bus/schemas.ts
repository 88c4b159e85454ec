// One validating decoder per bus message, typed against the contract in messages.ts.

import {
  ExitReasons,
  HealthCheckTypes,
  InstanceStates,
  LoadBalancing,
  LogSources,
  TaskReportStates,
  type MessageKinds,
  type MessageKind,
  type DropletFilter,
  type Empty,
  type HeartbeatDroplet,
  type HeartbeatTask,
  type LogLine,
  type ServiceBinding,
} from "./messages.ts";
import {
  anyMap,
  arrayOf,
  bool,
  int,
  Invalid,
  nonEmpty,
  num,
  object,
  oneOf,
  optional,
  recordOf,
  str,
  stringish,
  type Schema,
} from "./schema.ts";

const port = int(1, 65535);
/** A process type or task name as it travels: a Procfile type's characters (web, worker, db-migrate_2) */
const processType: Schema<string> = (v) =>
  typeof v === "string" && /^[A-Za-z0-9_-]{1,63}$/.test(v) ? v : new Invalid("expected a process type: 1-63 letters, digits, - or _");
const guid = nonEmpty(256);
const count = int(0);
const uri = str(2048);
const empty: Schema<Empty> = object<Empty>({} as never);

const routerRegister = object<MessageKinds["router.register"]>({
  host: nonEmpty(255),
  port,
  uris: arrayOf(nonEmpty(2048), 1000),
  app: optional(str(256)),
  private_instance_id: optional(str(256)),
  private_instance_index: optional(stringish),
  tags: optional(recordOf(str(1024), 64)),
  stale_threshold_in_seconds: optional(int(0, 86_400)),
  options: optional(object({ loadbalancing: optional(oneOf(LoadBalancing)) })),
  route_service_url: optional(str(2048)),
  tls_port: optional(port),
  server_cert_domain_san: optional(str(256)),
});

const filterFields = {
  droplet: nonEmpty(256),
  version: optional(str(256)),
  instances: optional(arrayOf(str(256), 10_000)),
  indices: optional(arrayOf(int(0, 100_000), 10_000)),
  states: optional(arrayOf(oneOf(InstanceStates), 8)),
};
const dropletFilter = object<DropletFilter>(filterFields);

const limits = object({ mem: count, disk: count, fds: count });

const serviceBinding = object<ServiceBinding>({
  name: str(256),
  label: str(256),
  plan: str(256),
  tags: arrayOf(str(256), 64),
  instance_guid: str(256),
  binding_guid: str(256),
  credentials: anyMap,
});

const heartbeatDroplet = object<HeartbeatDroplet>({
  droplet: nonEmpty(256),
  version: str(256),
  instance: nonEmpty(256),
  index: int(0, 100_000),
  state: oneOf(InstanceStates),
  state_timestamp: num,
  process_type: optional(processType),
});

const heartbeatTask = object<HeartbeatTask>({
  guid,
  state: oneOf(TaskReportStates),
  exit_status: optional(int(-1, 255)),
  failure_reason: optional(str(4096)),
});

const logLine = object<LogLine>({
  app: nonEmpty(256),
  source: oneOf(LogSources),
  index: int(-1, 100_000),
  stream: oneOf(["out", "err"] as const),
  ts: num,
  line: str(64 * 1024),
  process_type: optional(processType),
  task: optional(str(256)),
});

export const decoders: { [K in MessageKind]: Schema<MessageKinds[K]> } = {
  "router.register": routerRegister,
  "router.unregister": routerRegister,
  "router.start": object({
    id: nonEmpty(256),
    hosts: arrayOf(str(256), 64),
    minimumRegisterIntervalInSeconds: int(1, 86_400),
    pruneThresholdInSeconds: int(1, 86_400),
  }),
  "router.greet": empty,
  "dea.advertise": object({
    id: nonEmpty(128),
    url: optional(str(2048)),
    ip: nonEmpty(256),
    stacks: arrayOf(str(64), 32),
    available_memory: num,
    available_disk: num,
    app_id_to_count: recordOf(count),
    placement_properties: object({ zone: str(128) }),
  }),
  "dea.locate": empty,
  "dea.start": object({
    droplet: nonEmpty(256),
    version: str(256),
    index: int(0, 100_000),
    name: nonEmpty(256),
    uris: arrayOf(nonEmpty(2048), 1000),
    droplet_uri: nonEmpty(4096),
    droplet_sha256: nonEmpty(64),
    limits,
    env: recordOf(str(), 1000),
    services: arrayOf(serviceBinding, 100),
    start_command: str(4096),
    health_check: object({
      type: oneOf(HealthCheckTypes),
      endpoint: optional(str(2048)),
      timeout: int(1, 3600),
    }),
    vcap_application: anyMap,
    stack: optional(str(64)),
    process_type: optional(processType),
  }),
  "dea.stop": dropletFilter,
  "dea.update": object({ droplet: nonEmpty(256), uris: arrayOf(nonEmpty(2048), 1000), version: optional(str(256)), process_type: optional(processType) }),
  "dea.find.droplet": object({ ...filterFields, include_stats: optional(bool) }),
  "dea.find.droplet.reply": object({
    dea: nonEmpty(128),
    droplet: nonEmpty(256),
    version: str(256),
    instance: nonEmpty(256),
    index: int(0, 100_000),
    state: oneOf(InstanceStates),
    state_timestamp: num,
    stats: optional(
      object({
        name: str(256),
        uris: arrayOf(str(2048), 1000),
        host: str(256),
        port: int(0, 65535),
        uptime: num,
        usage: object({ cpu: num, mem: num, disk: num, time: num }),
        quotas: limits,
      }),
    ),
    process_type: optional(processType),
  }),
  "dea.heartbeat": object({ dea: nonEmpty(128), droplets: arrayOf(heartbeatDroplet, 100_000), tasks: optional(arrayOf(heartbeatTask, 100_000)) }),
  "dea.shutdown": object({ id: nonEmpty(128), app_id_to_count: recordOf(count) }),
  "dea.logs.recent": object({ droplet: nonEmpty(256), limit: optional(int(1, 10_000)) }),
  "dea.logs.recent.reply": object({ dea: nonEmpty(128), lines: arrayOf(logLine, 10_000) }),
  "droplet.exited": object({
    droplet: nonEmpty(256),
    version: str(256),
    instance: nonEmpty(256),
    index: int(0, 100_000),
    reason: oneOf(ExitReasons),
    exit_status: int(-1, 255),
    exit_description: str(4096),
    crash_timestamp: num,
    process_type: optional(processType),
  }),
  "healthmanager.start": empty,
  "staging.start": object({
    app_id: nonEmpty(256),
    task_id: nonEmpty(256),
    properties: object({
      buildpack: optional(str(256)),
      start_command: optional(str(4096)),
      env: optional(recordOf(str(), 1000)),
      resources: optional(object({ memory: optional(count), disk: optional(count) })),
    }),
    download_uri: nonEmpty(4096),
    upload_uri: nonEmpty(4096),
  }),
  "staging.reply": object({
    task_id: nonEmpty(256),
    phase: oneOf(["started", "done"] as const),
    detected_buildpack: optional(str(256)),
    droplet_sha: optional(str(64)),
    detected_start_command: optional(str(4096)),
    process_types: optional(recordOf(str(4096), 100)),
    error: optional(str(64 * 1024)),
  }),
  logs: logLine,
  "vcap.component.discover": empty,
  "vcap.component.announce": object({
    type: nonEmpty(64),
    uuid: nonEmpty(256),
    start: num,
    uptime: num,
    bus: object({ accepted: recordOf(count, 10_000), rejected: recordOf(count, 10_000), handler_errors: recordOf(count, 10_000) }),
  }),
  "task.start": object({
    guid,
    name: nonEmpty(256),
    droplet: nonEmpty(256),
    app_name: nonEmpty(256),
    sequence_id: count,
    droplet_uri: nonEmpty(4096),
    droplet_sha256: nonEmpty(64),
    command: nonEmpty(4096),
    limits,
    env: recordOf(str(), 1000),
    services: arrayOf(serviceBinding, 100),
    vcap_application: anyMap,
    stack: optional(str(64)),
  }),
  "task.cancel": object({ guid }),
  "task.state": object({
    dea: nonEmpty(128),
    guid,
    droplet: nonEmpty(256),
    state: oneOf(TaskReportStates),
    exit_status: optional(int(-1, 255)),
    failure_reason: optional(str(4096)),
    ts: num,
  }),
};
