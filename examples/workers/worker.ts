// The worker process of a Procfile app: no route and no port check; it works through a queue (here, a clock)
// and logs what it does, which shows up as APP/PROC/WORKER/<index> in `skiff logs`.

const index = process.env.CF_INSTANCE_INDEX ?? "0";
let tick = 0;
console.log(`worker ${index} started (pid ${process.pid}, uid ${process.getuid?.() ?? "?"})`);
setInterval(() => console.log(`worker ${index} tick ${++tick}`), 1000);

export {}; // a module: its names are its own (tsc checks the examples together)
