// The access log in gorouter's format. Lines are appended to a memory buffer and written in the
// background; when the disk cannot keep up, lines are dropped and counted rather than ever blocking
// or growing without bound.

import { open, type FileHandle } from "node:fs/promises";

export interface AccessRecord {
  host: string;
  method: string;
  target: string;
  status: number;
  responseBytes: number;
  userAgent: string;
  referer: string;
  remoteAddress: string;
  endpoint: { key: string; appId: string; instanceIndex: string; instanceId: string } | undefined;
  requestId: string;
  startedAtMs: number;
  routerError: string;
}

const FLUSH_MS = 200;
const MAX_BUFFERED = 4 * 1024 * 1024;

export class AccessLog {
  private buffer: string[] = [];
  private bufferedBytes = 0;
  private writing = false;
  dropped = 0;
  private timer: ReturnType<typeof setInterval>;

  private constructor(private readonly file: FileHandle | NodeJS.WritableStream) {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref?.();
  }

  static async open(path: string): Promise<AccessLog> {
    return new AccessLog(path === "-" ? process.stdout : await open(path, "a"));
  }

  record(r: AccessRecord): void {
    if (this.bufferedBytes > MAX_BUFFERED) {
      this.dropped++;
      return;
    }
    const now = Date.now();
    const e = r.endpoint;
    const line =
      `${r.host} - [${new Date(r.startedAtMs).toISOString()}] "${r.method} ${r.target} HTTP/1.1" ${r.status} 0 ${r.responseBytes} ` +
      `"${q(r.referer)}" "${q(r.userAgent)}" "${r.remoteAddress}" "${e ? e.key : "-"}" x_forwarded_proto:"http" ` +
      `vcap_request_id:"${r.requestId}" response_time:${((now - r.startedAtMs) / 1000).toFixed(6)} ` +
      `app_id:"${e?.appId || "-"}" app_index:"${e?.instanceIndex || "-"}" instance_id:"${e?.instanceId || "-"}" x_cf_routererror:"${r.routerError || "-"}"\n`;
    this.buffer.push(line);
    this.bufferedBytes += line.length;
  }

  async flush(): Promise<void> {
    if (this.writing || this.buffer.length === 0) return;
    this.writing = true;
    const text = this.buffer.join("");
    this.buffer = [];
    this.bufferedBytes = 0;
    try {
      if ("write" in this.file && typeof (this.file as FileHandle).appendFile === "function") await (this.file as FileHandle).write(text);
      else await new Promise<void>((resolve) => (this.file as NodeJS.WritableStream).write(text, () => resolve()));
    } catch {
      this.dropped++;
    } finally {
      this.writing = false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    if ("close" in this.file && typeof (this.file as FileHandle).close === "function" && this.file !== (process.stdout as unknown)) await (this.file as FileHandle).close();
  }
}

const q = (s: string): string => (s ? s.replace(/["\\\n]/g, "_") : "-");
