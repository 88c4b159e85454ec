// The smallest skiff app: answers "hello from skiff" and which instance answered: its index, its pid
// (in its sandbox's own PID namespace) and its uid (one per instance), which together name its process.

const port = Number(process.env.PORT || 8080);
const index = process.env.CF_INSTANCE_INDEX ?? "0";

Bun.serve({
  port,
  hostname: process.env.VCAP_APP_HOST || "0.0.0.0",
  fetch: () => new Response(`hello from skiff (instance ${index}, pid ${process.pid}, uid ${process.getuid?.() ?? "?"})\n`),
});
console.log(`hello listening on ${port}, instance ${index}`);
