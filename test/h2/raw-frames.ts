// An independent reader of what a client sends, for raw TCP test servers:
// skips the connection preface and splits frames, keeping DATA per stream.
import type * as net from "node:net";

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export class ClientFrames {
  readonly frames: RawFrame[] = [];
  private buf = Buffer.alloc(0);
  private prefaceSeen = false;
  private listeners: Array<(f: RawFrame) => void> = [];

  constructor(socket: net.Socket) {
    socket.on("data", (c: Buffer) => this.push(c));
  }

  /** Calls `fn` for every frame from now on. */
  onFrame(fn: (f: RawFrame) => void): void {
    this.listeners.push(fn);
  }

  private push(c: Buffer): void {
    this.buf = Buffer.concat([this.buf, c]);
    if (!this.prefaceSeen) {
      if (this.buf.length < 24) return;
      this.buf = this.buf.subarray(24);
      this.prefaceSeen = true;
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) return;
      const f = { type: this.buf[3]!, flags: this.buf[4]!, streamId: this.buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.buf.subarray(9, 9 + len)) };
      this.buf = this.buf.subarray(9 + len);
      this.frames.push(f);
      for (const l of this.listeners) l(f);
    }
  }

  /** DATA payload bytes received on a stream. */
  dataBytes(streamId: number): number {
    return this.frames.filter((f) => f.type === 0 && f.streamId === streamId).reduce((n, f) => n + f.payload.length, 0);
  }

  /** DATA payload received on a stream, concatenated. */
  data(streamId: number): Buffer {
    return Buffer.concat(this.frames.filter((f) => f.type === 0 && f.streamId === streamId).map((f) => f.payload));
  }

  /** True once the stream's END_STREAM arrived. */
  ended(streamId: number): boolean {
    return this.frames.some((f) => (f.type === 0 || f.type === 1) && f.streamId === streamId && (f.flags & 1) !== 0);
  }

  /** Frames of a type. */
  ofType(type: number): RawFrame[] {
    return this.frames.filter((f) => f.type === type);
  }
}

/** A SETTINGS payload from `[id, value]` pairs. */
export function settingsPayload(entries: Array<[number, number]>): Buffer {
  const b = Buffer.alloc(6 * entries.length);
  entries.forEach(([id, v], i) => {
    b.writeUInt16BE(id, 6 * i);
    b.writeUInt32BE(v, 6 * i + 2);
  });
  return b;
}
