/**
 * The floor the benchmark compares against: a bare gRPC client on
 * `node:http2` with protobuf-es, no deadlines, no cancellation, no error
 * details. Not a usable client; it shows what the wire itself costs here.
 */
import * as http2 from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";

export class BareClient {
  private readonly session: http2.ClientHttp2Session;

  constructor(origin: string) {
    this.session = http2.connect(origin, { settings: { initialWindowSize: 4 << 20 } });
    this.session.on("error", () => {});
  }

  call<I extends DescMessage, O extends DescMessage>(path: string, input: I, output: O, msg: MessageInitShape<I>): Promise<MessageShape<O>> {
    const payload = toBinary(input, create(input, msg));
    const frame = Buffer.allocUnsafe(5 + payload.length);
    frame[0] = 0;
    frame.writeUInt32BE(payload.length, 1);
    frame.set(payload, 5);
    return new Promise((resolve, reject) => {
      const s = this.session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      s.on("response", (h) => (status = h["grpc-status"] as string | undefined));
      s.on("trailers", (t) => (status = t["grpc-status"] as string | undefined));
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("error", reject);
      s.on("close", () => {
        if (status !== "0") return reject(new Error(`grpc-status ${status}`));
        const body = Buffer.concat(chunks);
        resolve(fromBinary(output, body.subarray(5)));
      });
      s.end(frame);
    });
  }

  close(): void {
    this.session.close();
  }
}
