// Free loopback ports for test servers.
import { createServer } from "node:net";

/** Asks the kernel for a free port on 127.0.0.1. Another process could take it before it is used; that is rare enough for tests. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr !== null ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}
