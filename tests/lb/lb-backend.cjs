// The app instance behind the routers in the load-balancer tests: uWS.js under Node (a process of its
// own, so it never shares an event loop with the load generator). It reads the whole request body,
// then answers "hello" at once, or after 30 ms under /slow/ (so every request of a wave holds its own
// connection through the load balancer and the router), and echoes the forwarded headers it got.
//   node tests/lb/lb-backend.cjs        prints "ready port=<n>"

const uws = require(require("node:path").join(__dirname, "../../node_modules/uWebSockets.js"));

uws
  .App()
  .any("/*", (res, req) => {
    const slow = req.getUrl().startsWith("/slow/");
    const proto = req.getHeader("x-forwarded-proto");
    const forwardedFor = req.getHeader("x-forwarded-for");
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const answer = () => {
      if (aborted) return;
      res.cork(() => res.writeHeader("X-Seen-Forwarded-Proto", proto).writeHeader("X-Seen-Forwarded-For", forwardedFor).end("hello"));
    };
    res.onData((_chunk, last) => {
      if (last) slow ? setTimeout(answer, 30) : answer();
    });
  })
  .listen("127.0.0.1", 0, (socket) => {
    if (!socket) process.exit(3);
    console.log(`ready port=${uws.us_socket_local_port(socket)}`);
  });
