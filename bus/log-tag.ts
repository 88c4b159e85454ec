// How a log line names where it came from, as cf does: `APP/0` (a web instance), `APP/PROC/WORKER/1`
// (an instance of another process type), `APP/TASK/migrate` (a task), `STG`, `RTR/0`… Shared by the
// CLI, the API's text format and the console. Pure; imports nothing.

export function logTag(l: { source: string; index: number; process_type?: string; task?: string }): string {
  if (l.task) return `${l.source}/TASK/${l.task}`;
  if (l.process_type && l.process_type !== "web") return `${l.source}/PROC/${l.process_type.toUpperCase()}${l.index >= 0 ? `/${l.index}` : ""}`;
  return l.index >= 0 ? `${l.source}/${l.index}` : l.source;
}
