// App packages in (`PUT /v3/apps/:guid/bits`: gzip tar, or zip converted to one in-process) and the
// signed blob URLs agents use: package download, droplet download and droplet upload.

import { Elysia } from "elysia";
import { checkTarGz, PackageRejected } from "../tar-check.ts";
import { isZip, zipToTarGz } from "../zip-to-tar.ts";
import { accessOf, authenticate } from "./auth.ts";
import { loadApp } from "./apps-routes.ts";
import type { ControllerContext } from "./context.ts";
import { ApiError, notAuthorized, notFound, tooLarge, unprocessable } from "./errors.ts";
import { presentApp } from "./present.ts";

/** Reads a request body, refusing (413) one over `max` bytes (by its declared length when it has one). */
export async function readCapped(request: Request, max: number, what: string): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > max) throw tooLarge(`the ${what} is ${declared} bytes; the limit is ${max}`);
  // Bun.serve's maxRequestBodySize bounds a body without a length; this bounds each kind.
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.length > max) throw tooLarge(`the ${what} is larger than the limit of ${max} bytes`);
  return body;
}

export function bitsRoutes(ctx: ControllerContext) {
  const { store, blobs, signer } = ctx;

  const upload = async ({ request, params }: { request: Request; params: { guid: string } }) => {
    const access = await accessOf(store, await authenticate(store, request));
    const app = await loadApp(ctx, access, params.guid, true);
    let bytes = await readCapped(request, ctx.limits.packageBytes, "package");
    if (bytes.length === 0) throw unprocessable("the package is empty: send the app as a .tar.gz body");
    try {
      // both paths stream with a byte budget: a small bomb is refused after the cap, not unpacked whole
      if (isZip(bytes)) bytes = await zipToTarGz(bytes, { maxBytes: ctx.limits.unpackedBytes, maxEntries: ctx.limits.maxEntries });
      await checkTarGz(bytes, ctx.limits.unpackedBytes, { maxEntries: ctx.limits.maxEntries });
    } catch (err) {
      if (err instanceof PackageRejected) throw unprocessable(`package refused: ${err.message}`);
      throw err;
    }
    const sha = await blobs.put("packages", bytes);
    const droplet = app.droplet_guid ? await store.dropletByGuid(app.droplet_guid) : undefined;
    await store.tx(async (q) => {
      await store.updateApp(q, app.guid, { package_sha: sha, package_state: droplet?.package_sha === sha ? "STAGED" : "PENDING" });
      await store.recordEvent(q, { type: "audit.app.upload-bits", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid, data: { sha256: sha, bytes: bytes.length } });
    });
    return presentApp((await store.appByGuid(app.guid))!);
  };

  const signed = (request: Request, method: string) => {
    const url = new URL(request.url);
    if (!signer.verify(method, url.pathname, url.searchParams.get("expires"), url.searchParams.get("signature")))
      throw notAuthorized("the signed URL is invalid or has expired");
  };

  const blob = (kind: "packages" | "droplets") => ({ request, params }: { request: Request; params: { sha: string } }) => {
    signed(request, "GET");
    if (!blobs.has(kind, params.sha)) throw notFound(kind === "packages" ? "Package" : "Droplet");
    return new Response(blobs.file(kind, params.sha), { headers: { "content-type": "application/gzip", "x-skiff-sha256": params.sha } });
  };

  return new Elysia({ name: "bits" })
    .put("/v3/apps/:guid/bits", upload, { parse: "none", detail: { summary: "Upload the app's package: a .tar.gz (or .zip) body" } })
    .post("/v3/apps/:guid/bits", upload, { parse: "none", detail: { summary: "Upload the app's package (same as PUT)" } })
    .get("/internal/v1/packages/:sha", blob("packages"), { detail: { summary: "Agents: download a package (signed URL)" } })
    .get("/internal/v1/droplets/:sha", blob("droplets"), { detail: { summary: "Agents: download a droplet (signed URL)" } })
    .put("/internal/v1/droplets/upload/:task", async ({ request, params, set }) => {
      signed(request, "PUT");
      if (!ctx.stager.taskApp(params.task)) throw new ApiError(410, 10010, "CF-StagingTaskGone", "this staging task is over; the upload is not needed");
      const bytes = await readCapped(request, ctx.limits.dropletBytes, "droplet");
      if (bytes.length === 0) throw unprocessable("the droplet is empty");
      const sha = await blobs.put("droplets", bytes);
      ctx.stager.recordUpload(params.task, sha);
      set.status = 201;
      return { sha256: sha };
    }, { parse: "none", detail: { summary: "Agents: upload a staged droplet (signed URL)" } });
}
