// The smallest skiff app: answers "hello from skiff" and which instance (and process) answered.

const port = Number(process.env.PORT || 8080);
const index = process.env.CF_INSTANCE_INDEX ?? "0";

Bun.serve({
  port,
  hostname: process.env.VCAP_APP_HOST || "0.0.0.0",
  fetch: () => new Response(`hello from skiff (instance ${index}, pid ${process.pid})\n`),
});
console.log(`hello listening on ${port}, instance ${index}`);
