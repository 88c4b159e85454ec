// WebSocket upgrade proxying through the real router to a Bun.serve WebSocket backend.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { Subjects } from "../../bus/index.ts";
import { stopAllProcesses } from "../support/processes.ts";
import { startHarness, startRouter, type Harness, type RunningRouter } from "./router-harness.ts";

let h: Harness;
let router: RunningRouter;
let backend: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats);
  backend = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req, server) {
      if (server.upgrade(req, { data: { appId: req.headers.get("x-cf-applicationid") } })) return;
      return new Response("not a websocket", { status: 400 });
    },
    websocket: {
      open(ws) {
        ws.send(`welcome ${(ws.data as { appId: string }).appId}`);
      },
      message(ws, msg) {
        ws.send(typeof msg === "string" ? `echo:${msg}` : msg);
      },
    },
  });
  h.bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backend.port!, uris: ["ws.skiff.localhost"], app: "ws-app" });
  await h.bus.flush();
  await Bun.sleep(300);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
  backend?.stop(true);
  await h?.stop();
});

test("text and binary messages both ways, X-CF headers reach the backend", async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${router.port}/chat`, { headers: { host: "ws.skiff.localhost" } } as never);
  ws.binaryType = "arraybuffer";
  const got: (string | number)[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ws.onmessage = (e) => {
      got.push(typeof e.data === "string" ? e.data : (e.data as ArrayBuffer).byteLength);
      if (got.length === 1) {
        ws.send("hi");
        ws.send(new Uint8Array(200_000));
      }
      if (got.length === 3) resolve();
    };
    ws.onerror = () => reject(new Error("websocket error"));
    setTimeout(() => reject(new Error(`timeout, got ${JSON.stringify(got)}`)), 5000);
  });
  await done;
  expect(got).toEqual(["welcome ws-app", "echo:hi", 200_000]);
  ws.close();
});

test("an upgrade to an unknown host gets 404", async () => {
  const res = await fetch(`http://127.0.0.1:${router.port}/`, {
    headers: { host: "nows.skiff.localhost", upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" },
  });
  expect(res.status).toBe(404);
  expect(res.headers.get("x-cf-routererror")).toBe("unknown_route");
});
