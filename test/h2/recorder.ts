// A FrameSink that records what the frame reader reports, for unit and fuzz tests.
import type { H2Error } from "../../src/transport/h2/errors.js";
import type { FrameSink } from "../../src/transport/h2/frames/frame-reader.js";

/** A sink that records every callback as a plain value. */
export class Recorder implements FrameSink {
  events: unknown[] = [];
  data = new Map<number, Buffer[]>();
  onDataStart(streamId: number, length: number): void {
    this.events.push(["dataStart", streamId, length]);
  }
  onData(streamId: number, chunk: Buffer, endOfFrame: boolean, endStream: boolean): void {
    const list = this.data.get(streamId) ?? [];
    list.push(Buffer.from(chunk));
    this.data.set(streamId, list);
    if (endOfFrame) this.events.push(["dataEnd", streamId, endStream]);
  }
  onHeaders(streamId: number, block: Buffer, endStream: boolean): void {
    this.events.push(["headers", streamId, block.toString("hex"), endStream]);
  }
  onRstStream(streamId: number, code: number): void {
    this.events.push(["rst", streamId, code]);
  }
  onSettings(entries: number[]): void {
    this.events.push(["settings", entries]);
  }
  onSettingsAck(): void {
    this.events.push(["settingsAck"]);
  }
  onPing(payload: Buffer, ack: boolean): void {
    this.events.push(["ping", payload.toString("hex"), ack]);
  }
  onGoAway(lastStreamId: number, code: number, debug: string): void {
    this.events.push(["goaway", lastStreamId, code, debug]);
  }
  onWindowUpdate(streamId: number, increment: number): void {
    this.events.push(["windowUpdate", streamId, increment]);
  }
  onStreamError(error: H2Error): void {
    this.events.push(["streamError", error.streamId, error.code]);
  }
  bytes(streamId: number): Buffer {
    return Buffer.concat(this.data.get(streamId) ?? []);
  }
}

export const LIMITS = { maxFrameSize: 16384, maxHeaderBlockBytes: 65536, maxContinuations: 16 };

