// Watches routers' idle-close ticks from a process that does nothing else, so it sees each close
// within a fraction of a millisecond (a busy test process would see it late): it keeps one connection
// open to each port, sending nothing; uWS closes it on a tick 8-12 s later, and it prints the instant
// (ms since the epoch, to the µs) and opens the next.
//   node tests/lb/tick-watch.cjs PORT…      prints "tick <port> <epoch ms>" per close

const { connect } = require("node:net");

for (const port of process.argv.slice(2).map(Number)) {
  const watch = () => {
    const s = connect(port, "127.0.0.1");
    s.on("error", () => {});
    s.on("close", () => {
      console.log(`tick ${port} ${(performance.timeOrigin + performance.now()).toFixed(3)}`);
      setTimeout(watch, 100);
    });
  };
  watch();
}
