// The console's script and stylesheet: client/main.ts (htmx, uPlot, the charts and the log tail)
// bundled by Bun.build once per process, with uPlot's CSS and ours, held in memory with gzip copies
// and served under content-hashed names (cached for a year: a new build gets a new name). No CDN:
// everything comes from node_modules through this controller, so the console works offline.

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

interface Asset {
  name: string;
  type: string;
  body: Uint8Array<ArrayBuffer>;
  gzip: Uint8Array<ArrayBuffer>;
}

const here = import.meta.dir;

export class ConsoleAssets {
  private built: Promise<Map<string, Asset>> | undefined;
  /** ms the last build took */
  buildMs = 0;

  /** Builds on first use (about 30 ms); the controller starts it right away. */
  ready(): Promise<Map<string, Asset>> {
    return (this.built ??= this.build());
  }

  async urls(): Promise<{ script: string; style: string }> {
    const m = await this.ready();
    const of = (type: string) => `/console/assets/${[...m.values()].find((a) => a.type.startsWith(type))!.name}`;
    return { script: of("text/javascript"), style: of("text/css") };
  }

  async response(name: string, request: Request): Promise<Response> {
    const a = (await this.ready()).get(name);
    if (!a) return new Response("no such asset\n", { status: 404, headers: { "content-type": "text/plain" } });
    const gz = /\bgzip\b/.test(request.headers.get("accept-encoding") ?? "");
    return new Response(gz ? a.gzip : a.body, {
      headers: {
        "content-type": a.type, "cache-control": "public, max-age=31536000, immutable", "x-content-type-options": "nosniff",
        ...(gz ? { "content-encoding": "gzip", vary: "accept-encoding" } : { vary: "accept-encoding" }),
      },
    });
  }

  private async build(): Promise<Map<string, Asset>> {
    const t0 = performance.now();
    const out = await Bun.build({ entrypoints: [join(here, "client/main.ts")], target: "browser", minify: true, sourcemap: "none" });
    if (!out.success) throw new Error(`building the console's script failed: ${out.logs.map(String).join("\n")}`);
    const js = new Uint8Array(await out.outputs[0]!.arrayBuffer());
    const uplotCss = await Bun.file(Bun.resolveSync("uplot/dist/uPlot.min.css", here)).text();
    const css: Uint8Array<ArrayBuffer> = new TextEncoder().encode(uplotCss + "\n" + (await Bun.file(join(here, "client/console.css")).text()));
    const assets = new Map<string, Asset>();
    for (const [body, ext, type] of [[js, "js", "text/javascript; charset=utf-8"], [css, "css", "text/css; charset=utf-8"]] as const) {
      const name = `console-${createHash("sha256").update(body).digest("hex").slice(0, 12)}.${ext}`;
      assets.set(name, { name, type, body, gzip: new Uint8Array(gzipSync(body, { level: 9 })) });
    }
    this.buildMs = performance.now() - t0;
    return assets;
  }
}
