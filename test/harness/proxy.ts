// A TCP proxy in front of a member that can pass traffic, blackhole it
// (accept connections and data, answer nothing), or cut every connection.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  /** `127.0.0.1:port` to give clients. */
  readonly endpoint: string;
  /** From now on: new connections are accepted and never answered; open ones stop carrying data. */
  blackhole(): void;
  /**
   * Forward traffic again. Connections open before the blackhole resume, minus the
   * bytes it dropped; connections accepted during it were never wired upstream and
   * stay silent until `cutAll()` or the client gives up on them.
   */
  pass(): void;
  /** Reset every open connection. */
  cutAll(): void;
  /** Number of client connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
}

/** Starts a proxy to `host:port` on a free loopback port. */
export function startProxy(host: string, port: number): Promise<TcpProxy> {
  let holed = false;
  let accepted = 0;
  const pairs = new Set<Pair>();

  const wire = (pair: Pair) => {
    const up = connect(port, host);
    pair.upstream = up;
    // Explicit forwarding (not pipe) so blackhole() can drop bytes in both directions.
    pair.client.on("data", (d) => {
      if (!holed) up.write(d);
    });
    up.on("data", (d) => {
      if (!holed) pair.client.write(d);
    });
    const end = () => {
      pair.client.destroy();
      up.destroy();
      pairs.delete(pair);
    };
    up.on("error", end);
    up.on("close", end);
    pair.client.on("close", end);
  };

  const server: Server = createServer((client) => {
    accepted++;
    const pair: Pair = { client, upstream: undefined };
    pairs.add(pair);
    client.on("error", () => client.destroy());
    if (holed) {
      // Accept, swallow whatever arrives, never connect upstream.
      client.on("data", () => {});
      client.on("close", () => pairs.delete(pair));
      return;
    }
    wire(pair);
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      if (typeof addr !== "object" || addr === null) return reject(new Error("proxy has no address"));
      resolve({
        endpoint: `127.0.0.1:${addr.port}`,
        get accepted() {
          return accepted;
        },
        blackhole() {
          holed = true;
        },
        pass() {
          holed = false;
        },
        cutAll() {
          for (const p of pairs) {
            p.client.resetAndDestroy();
            p.upstream?.destroy();
          }
          pairs.clear();
        },
        close() {
          for (const p of pairs) {
            p.client.destroy();
            p.upstream?.destroy();
          }
          pairs.clear();
          return new Promise<void>((r) => server.close(() => r()));
        },
      });
    });
  });
}
