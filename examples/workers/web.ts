// The web process of a Procfile app: answers through the router, and says which instance it is.

const port = Number(process.env.PORT || 8080);
const index = process.env.CF_INSTANCE_INDEX ?? "0";

Bun.serve({
  port,
  hostname: process.env.VCAP_APP_HOST || "0.0.0.0",
  fetch: () => new Response(`web instance ${index} (pid ${process.pid}, uid ${process.getuid?.() ?? "?"}) of a web + worker app\n`),
});
console.log(`web listening on ${port}, instance ${index}`);

export {}; // a module: its names are its own (tsc checks the examples together)
