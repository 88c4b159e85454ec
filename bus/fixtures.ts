// One valid example of every bus message, for codec tests and for tools that need a sample.

import type { MessageKind, MessageKinds } from "./messages.ts";

export const sampleMessages: { [K in MessageKind]: MessageKinds[K] } = {
  "router.register": {
    host: "127.0.0.1",
    port: 61001,
    uris: ["hello.skiff.localhost", "hello.skiff.localhost/api"],
    app: "app-guid-1",
    private_instance_id: "inst-1",
    private_instance_index: "0",
    tags: { component: "app" },
    stale_threshold_in_seconds: 120,
    options: { loadbalancing: "least-connection" },
  },
  "router.unregister": { host: "127.0.0.1", port: 61001, uris: ["hello.skiff.localhost"] },
  "router.start": { id: "router-1", hosts: ["127.0.0.1"], minimumRegisterIntervalInSeconds: 20, pruneThresholdInSeconds: 120 },
  "router.greet": {},
  "dea.advertise": {
    id: "agent-1",
    ip: "127.0.0.1",
    stacks: ["skiff-linux"],
    available_memory: 4096,
    available_disk: 16384,
    app_id_to_count: { "app-guid-1": 2 },
    placement_properties: { zone: "z1" },
  },
  "dea.locate": {},
  "dea.start": {
    droplet: "app-guid-1",
    version: "a".repeat(64),
    index: 0,
    name: "hello",
    uris: ["hello.skiff.localhost"],
    droplet_uri: "http://127.0.0.1:9022/internal/droplets/aaaa?sig=x",
    droplet_sha256: "a".repeat(64),
    limits: { mem: 256, disk: 1024, fds: 16384 },
    env: { GREETING: "hi" },
    services: [
      {
        name: "db",
        label: "postgresql",
        plan: "small",
        tags: ["sql"],
        instance_guid: "si-1",
        binding_guid: "b-1",
        credentials: { uri: "postgres://u:p@127.0.0.1/db" },
      },
    ],
    start_command: "bun run start",
    health_check: { type: "port", timeout: 60 },
    vcap_application: { application_name: "hello" },
  },
  "dea.stop": { droplet: "app-guid-1", version: "v1", indices: [1, 2] },
  "dea.update": { droplet: "app-guid-1", uris: ["hello.skiff.localhost"], version: "v1" },
  "dea.find.droplet": { droplet: "app-guid-1", states: ["RUNNING"], include_stats: true },
  "dea.find.droplet.reply": {
    dea: "agent-1",
    droplet: "app-guid-1",
    version: "v1",
    instance: "inst-1",
    index: 0,
    state: "RUNNING",
    state_timestamp: 1764000000.5,
    stats: {
      name: "hello",
      uris: ["hello.skiff.localhost"],
      host: "127.0.0.1",
      port: 61001,
      uptime: 12.5,
      usage: { cpu: 0.5, mem: 31_000_000, disk: 4_000_000, time: 1764000000 },
      quotas: { mem: 268435456, disk: 1073741824, fds: 16384 },
    },
  },
  "dea.heartbeat": {
    dea: "agent-1",
    droplets: [
      { droplet: "app-guid-1", version: "v1", instance: "inst-1", index: 0, state: "RUNNING", state_timestamp: 1764000000 },
      { droplet: "app-guid-1", version: "v1", instance: "inst-2", index: 0, state: "RUNNING", state_timestamp: 1764000000, process_type: "worker" },
    ],
    tasks: [{ guid: "task-guid-1", state: "RUNNING" }, { guid: "task-guid-0", state: "FAILED", exit_status: 1, failure_reason: "exited with status 1" }],
  },
  "dea.shutdown": { id: "agent-1", app_id_to_count: { "app-guid-1": 1 } },
  "dea.logs.recent": { droplet: "app-guid-1", limit: 100 },
  "dea.logs.recent.reply": {
    dea: "agent-1",
    lines: [{ app: "app-guid-1", source: "APP", index: 0, stream: "out", ts: 1764000000000, line: "listening" }],
  },
  "droplet.exited": {
    droplet: "app-guid-1",
    version: "v1",
    instance: "inst-1",
    index: 0,
    reason: "CRASHED",
    exit_status: 137,
    exit_description: "killed by signal 9",
    crash_timestamp: 1764000000,
  },
  "healthmanager.start": {},
  "staging.start": {
    app_id: "app-guid-1",
    task_id: "task-1",
    properties: { buildpack: "bun", env: { A: "1" }, resources: { memory: 1024, disk: 4096 } },
    download_uri: "http://127.0.0.1:9022/internal/packages/x?sig=y",
    upload_uri: "http://127.0.0.1:9022/internal/droplets/x?sig=y",
  },
  "staging.reply": { task_id: "task-1", phase: "done", detected_buildpack: "bun", droplet_sha: "b".repeat(64), detected_start_command: "bun run start" },
  logs: { app: "app-guid-1", source: "STG", index: -1, stream: "out", ts: 1764000000000, line: "-----> Bun app detected" },
  "vcap.component.discover": {},
  "vcap.component.announce": {
    type: "agent",
    uuid: "agent-1",
    start: 1764000000000,
    uptime: 12.5,
    bus: { accepted: { "dea.locate": 3 }, rejected: { "dea.locate": 0 }, handler_errors: {} },
  },
  "task.start": {
    guid: "task-guid-1",
    name: "migrate",
    droplet: "app-guid-1",
    app_name: "hello",
    sequence_id: 1,
    droplet_uri: "http://127.0.0.1:9022/internal/droplets/aaaa?sig=x",
    droplet_sha256: "a".repeat(64),
    command: "bun run migrate",
    limits: { mem: 256, disk: 1024, fds: 16384 },
    env: { GREETING: "hi" },
    services: [],
    vcap_application: { application_name: "hello" },
  },
  "task.cancel": { guid: "task-guid-1" },
  "task.state": { dea: "agent-1", guid: "task-guid-1", droplet: "app-guid-1", state: "FAILED", exit_status: 3, failure_reason: "exited with status 3", ts: 1764000000000 },
};

/**
 * A sample message with its first field given a value of the wrong type: nearly valid, so a test can
 * check a decoder rejects more than garbage. Undefined for messages that have no fields.
 */
export function brokenMessage(kind: MessageKind): Record<string, unknown> | undefined {
  const sample = sampleMessages[kind] as Record<string, unknown>;
  const key = Object.keys(sample)[0];
  if (key === undefined) return undefined;
  return { ...sample, [key]: typeof sample[key] === "string" ? 12345 : "not-the-right-type" };
}
