// What the in-process controller suites share: a caller of the API through `app.handle` (no port), and
// an app package made with the system tar.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BASE = "http://controller.test";
export type ApiAnswer = { status: number; json: any };

/**
 * A request through `handle` as the holder of `token` (null: without credentials); a Uint8Array body is
 * sent as is, anything else as JSON.
 */
export function apiCaller(handle: (req: Request) => Promise<Response> | Response) {
  return async (token: string | null, method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const res = await handle(new Request(BASE + path, {
      method,
      headers: { ...(token ? { authorization: `bearer ${token}` } : {}), ...(body !== undefined && !(body instanceof Uint8Array) ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : body instanceof Uint8Array ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body),
    }));
    const text = await res.text();
    return { status: res.status, json: /^[{[]/.test(text) ? JSON.parse(text) : undefined };
  };
}

/** A gzip tar of `files` (name → content), as `skiff push` uploads. */
export async function tarGz(files: Record<string, string>): Promise<Uint8Array> {
  const d = mkdtempSync(join(tmpdir(), "skiff-pkg-"));
  for (const [name, content] of Object.entries(files)) await Bun.write(join(d, name), content);
  const p = Bun.spawn(["tar", "-czf", "-", "-C", d, "."], { stdout: "pipe" });
  const out = new Uint8Array(await new Response(p.stdout).arrayBuffer());
  await p.exited;
  rmSync(d, { recursive: true, force: true });
  return out;
}
