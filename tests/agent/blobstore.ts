// A tiny stand-in for the controller's blobstore in agent tests: serves app packages (gzip tars of
// fixture directories), accepts droplet PUTs (201 {sha256}) and serves droplets back by hash.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";

export interface Blobstore {
  url: string;
  /** Packs a directory as an app package; returns its download URI. */
  addPackage(name: string, dir: string): string;
  addPackageBytes(name: string, gz: Uint8Array): string;
  uploadUri(name: string): string;
  /** An upload URI that answers `status` to the PUT. */
  failingUploadUri(status: number): string;
  dropletUri(sha: string): string;
  /** Puts droplet bytes directly (as if staged); returns the sha256. */
  addDroplet(bytes: Uint8Array): string;
  droplets: Map<string, Uint8Array>;
  stop(): void;
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export function packDir(dir: string): Uint8Array {
  return new Uint8Array(execFileSync("tar", ["-czf", "-", "-C", dir, "."], { maxBuffer: 256 * 1024 * 1024 }));
}

export function startBlobstore(): Blobstore {
  const packages = new Map<string, Uint8Array>();
  const droplets = new Map<string, Uint8Array>();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const [, kind, name] = path.split("/");
      if (req.method === "GET" && kind === "packages") {
        const p = packages.get(name!);
        return p ? new Response(p as Uint8Array<ArrayBuffer>) : new Response("no package", { status: 404 });
      }
      if (req.method === "GET" && kind === "droplets") {
        const d = droplets.get(name!);
        return d ? new Response(d as Uint8Array<ArrayBuffer>) : new Response("no droplet", { status: 404 });
      }
      if (req.method === "PUT" && kind === "upload-fail") {
        await req.arrayBuffer();
        return new Response("the blobstore is full", { status: Number(name) });
      }
      if (req.method === "PUT" && kind === "upload") {
        const body = new Uint8Array(await req.arrayBuffer());
        const sha = sha256(body);
        droplets.set(sha, body);
        return Response.json({ sha256: sha }, { status: 201 });
      }
      return new Response("not found", { status: 404 });
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    droplets,
    addPackage(name, dir) {
      packages.set(name, packDir(dir));
      return `${url}/packages/${name}`;
    },
    addPackageBytes(name, gz) {
      packages.set(name, gz);
      return `${url}/packages/${name}`;
    },
    uploadUri: (name) => `${url}/upload/${name}`,
    failingUploadUri: (status) => `${url}/upload-fail/${status}`,
    dropletUri: (sha) => `${url}/droplets/${sha}`,
    addDroplet(bytes) {
      const sha = sha256(bytes);
      droplets.set(sha, bytes);
      return sha;
    },
    stop: () => server.stop(true),
  };
}
