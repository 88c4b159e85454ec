// The NATS subjects of the skiff bus, with Cloud Foundry's names. The only place a subject is spelled.

export const Subjects = {
  routerStart: "router.start",
  routerGreet: "router.greet",
  routerRegister: "router.register",
  routerUnregister: "router.unregister",
  deaAdvertise: "dea.advertise",
  deaLocate: "dea.locate",
  deaStop: "dea.stop",
  deaUpdate: "dea.update",
  deaFindDroplet: "dea.find.droplet",
  deaHeartbeat: "dea.heartbeat",
  deaShutdown: "dea.shutdown",
  /** skiff extension: ask every agent for its ring buffer of recent log lines of one app. */
  deaLogsRecent: "dea.logs.recent",
  dropletExited: "droplet.exited",
  healthManagerStart: "healthmanager.start",
  /** Cloud Foundry's component discovery: every component answers with vcap.component.announce. */
  componentDiscover: "vcap.component.discover",
  componentAnnounce: "vcap.component.announce",
  /** skiff extension (issue 17): cancel a task, on whichever agent runs it. */
  taskCancel: "task.cancel",
  /** skiff extension (issue 17): an agent reports a task RUNNING, SUCCEEDED or FAILED. */
  taskState: "task.state",
  /** Every app's log stream, for subscribers that want all of them. */
  logsAll: "logs.*",
} as const;

/** `dea.<id>.start`: the controller's start order for one agent. */
export const deaStartSubject = (agentId: string): string => `dea.${agentId}.start`;
/** `staging.<id>.start`: a staging request for one agent. */
export const stagingStartSubject = (agentId: string): string => `staging.${agentId}.start`;
/** `task.<id>.start`: run a task (a one-off command from an app's droplet) on one agent (issue 17). */
export const taskStartSubject = (agentId: string): string => `task.${agentId}.start`;
/** `logs.<app>`: one app's log stream. */
export const logsSubject = (appId: string): string => `logs.${appId}`;

/** Agent ids and app ids become subject tokens, so they may not hold separators or wildcards. */
export function isSubjectToken(s: string): boolean {
  return s.length > 0 && s.length <= 128 && /^[A-Za-z0-9_-]+$/.test(s);
}
