// A node HTTP server whose event loop a request to /block stops for ten
// minutes (a synchronous wait, as a sync call in a handler would; no CPU
// spent): connections it accepted before then get no more reads.
// Prints {"ready": "node", "pid": PID} once it listens on 127.0.0.1:PORT.
const http = require("http");
const port = Number(process.argv[2] || 30020);
const server = http.createServer((req, res) => {
  if (req.url === "/block") {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600000);
  }
  res.end("ok\n");
});
server.listen(port, "127.0.0.1", () => {
  console.log(JSON.stringify({ ready: "node", pid: process.pid }));
});
