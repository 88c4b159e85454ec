// skiff's static file server: copied into the droplet of every static site and run with Bun.
// Serves the current directory on $PORT; never serves dot-files or anything outside the directory.

import { resolve, sep } from "node:path";

const root = resolve(process.cwd());
const port = Number(process.env.PORT || 8080);

Bun.serve({
  port,
  hostname: process.env.VCAP_APP_HOST || "0.0.0.0",
  async fetch(req) {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url).pathname);
    } catch {
      return new Response("bad request\n", { status: 400 });
    }
    if (path.split("/").some((s) => s.startsWith(".") || s.includes("\0"))) return new Response("not found\n", { status: 404 });
    let file = resolve(root, "." + path);
    if (file !== root && !file.startsWith(root + sep)) return new Response("not found\n", { status: 404 });
    if (path.endsWith("/")) file = resolve(file, "index.html");
    let f = Bun.file(file);
    if (!(await f.exists())) {
      f = Bun.file(resolve(file, "index.html"));
      if (!(await f.exists())) return new Response("not found\n", { status: 404 });
    }
    return new Response(f);
  },
});
console.log(`static site on port ${port}`);
