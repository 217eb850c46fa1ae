/**
 * Backend snapshots: the member's whole database streamed into a file or any
 * `Writable`, a message at a time (never held in memory), at the pace the
 * destination accepts, and checked against the checksum etcd sends with it.
 *
 * How etcd lays a snapshot out on the wire (read from the server's
 * `Maintenance.Snapshot` handler in etcd 3.4 and 3.5, and from the restore
 * code of etcdctl/etcdutl):
 *
 * - The member copies its bolt database file inside one read transaction and
 *   sends it in messages of at most 32 KiB. Each message's `remaining_bytes`
 *   says how many database bytes are still to come after it, so the first
 *   message tells the database size: its blob length plus its `remaining_bytes`.
 * - While sending, the member feeds exactly those bytes into a SHA-256. After
 *   the last database byte it sends one more message whose blob is the raw
 *   32-byte digest (with `remaining_bytes` 0, like the last data message, so
 *   the digest is recognised by position, not by a flag).
 * - Joined together, the blobs are `database ‖ SHA-256(database)`. That is
 *   also the file format `snapshot save` writes and `snapshot restore` reads:
 *   a bolt file is a whole number of pages, so its length is a multiple of
 *   512, and a file whose length is 32 more than a multiple of 512 carries the
 *   digest in its last 32 bytes, which restore strips and checks.
 *
 * This module writes the stream as it comes (digest included, so the file
 * restores with etcd's own tools), hashes everything but the last 32 bytes,
 * and at the end checks the size and the digest.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import type { Writable } from "node:stream";
import { Maintenance as MaintenanceService, type SnapshotResponse } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { AbortedError, InvalidOptionError, SnapshotVerificationError, toEtcdError } from "../errors.js";
import { onEndpoint, type AdminContext } from "./endpoint-target.js";

/** Length of the SHA-256 digest etcd appends to a snapshot. */
export const SNAPSHOT_DIGEST_BYTES = 32;

/** Progress of a snapshot, reported after each piece is written. */
export interface SnapshotProgress {
  /** Bytes written to the destination so far. */
  bytes: number;
  /** Bytes the whole snapshot will have (database plus the 32-byte digest), once the first piece told the size. */
  totalBytes: number | undefined;
}

/** Options of `maintenance.snapshot`. */
export interface SnapshotOptions {
  /** The member to take it from (`host:port` or client URL). Default: the pinned endpoint. */
  endpoint?: string;
  /** Called after each piece is written (about every 32 KiB). */
  onProgress?: (progress: SnapshotProgress) => void;
  /** Stops the snapshot; the promise rejects with `AbortedError`. */
  signal?: AbortSignal;
  /** Deadline for the whole transfer. Default: none (a hung member is still found by keep-alive pings). */
  timeoutMs?: number;
}

/** A snapshot that was written and verified. */
export interface SnapshotInfo {
  /** Size of the database, without the digest. */
  databaseBytes: number;
  /** Bytes written: the database plus the 32-byte digest. */
  bytes: number;
  /** The SHA-256 of the database, hex. */
  sha256: string;
  /** `host:port` of the member it came from. */
  endpoint: string;
}

/**
 * Checks a snapshot as its bytes go by: hashes all but the last 32 bytes
 * (held back, since only the end of the stream says they are the digest)
 * and, at {@link SnapshotVerifier.finish}, compares. Pure logic, no I/O.
 */
export class SnapshotVerifier {
  private readonly hash: Hash = createHash("sha256");
  private tail = Buffer.alloc(0);
  private seen = 0;
  private expected: number | undefined;

  /** Size of the database announced by the first message, when it came from a server. */
  get databaseBytes(): number | undefined {
    return this.expected;
  }

  /** Bytes seen so far, digest included. */
  get bytes(): number {
    return this.seen;
  }

  /** Feeds one server message; returns its bytes. */
  message(m: Pick<SnapshotResponse, "remainingBytes" | "blob">): Uint8Array {
    if (this.expected === undefined) {
      // The first message: what it carries plus what it says is still to come is the whole database.
      this.expected = m.blob.length + Number(m.remainingBytes);
    }
    this.update(m.blob);
    return m.blob;
  }

  /** Feeds raw bytes (a saved snapshot file, or a stream whose size is unknown). */
  update(chunk: Uint8Array): void {
    this.seen += chunk.length;
    if (chunk.length >= SNAPSHOT_DIGEST_BYTES) {
      this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - SNAPSHOT_DIGEST_BYTES));
      this.tail = Buffer.from(chunk.subarray(chunk.length - SNAPSHOT_DIGEST_BYTES));
      return;
    }
    const joined = Buffer.concat([this.tail, chunk]);
    const keep = Math.min(SNAPSHOT_DIGEST_BYTES, joined.length);
    this.hash.update(joined.subarray(0, joined.length - keep));
    this.tail = joined.subarray(joined.length - keep);
  }

  /**
   * Checks what was fed: complete, and matching its digest. Returns the
   * digest as hex.
   *
   * @throws SnapshotVerificationError when the stream was cut short, carries
   * no digest, or the digest does not match.
   */
  finish(endpoint?: string): string {
    const opts = endpoint !== undefined ? { endpoint } : {};
    if (this.seen < SNAPSHOT_DIGEST_BYTES) {
      throw new SnapshotVerificationError(`snapshot has ${this.seen} bytes, too short to hold its SHA-256`, opts);
    }
    const database = this.seen - SNAPSHOT_DIGEST_BYTES;
    if (this.expected !== undefined && database !== this.expected) {
      throw new SnapshotVerificationError(
        `snapshot is incomplete or overlong: the server announced ${this.expected} database bytes plus a ${SNAPSHOT_DIGEST_BYTES}-byte SHA-256, got ${this.seen} bytes in all`,
        opts,
      );
    }
    if (this.expected === undefined && database % 512 !== 0) {
      throw new SnapshotVerificationError(`snapshot of ${this.seen} bytes does not end with a SHA-256 (its length is not 32 more than a multiple of 512)`, opts);
    }
    const digest = this.hash.digest();
    if (!digest.equals(this.tail)) {
      throw new SnapshotVerificationError(
        `snapshot SHA-256 mismatch: the data hashes to ${digest.toString("hex")}, the snapshot says ${this.tail.toString("hex")}`,
        opts,
      );
    }
    return digest.toString("hex");
  }
}

/** Most bytes held before they are written to a file. */
const FILE_BATCH_BYTES = 1024 * 1024;

/** Where the bytes go: a file (written to `path.part`, renamed when verified) or a caller's `Writable`. */
interface Sink {
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  fail(err: Error): Promise<void>;
}

async function fileSink(path: string): Promise<Sink> {
  const part = `${path}.part`;
  let fh: FileHandle;
  try {
    fh = await open(part, "w", 0o600);
  } catch (e) {
    throw new InvalidOptionError(`cannot write the snapshot to ${part}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await fh.close();
  };
  // Pieces are gathered up to FILE_BATCH_BYTES and written with one writev: a write per
  // 32 KiB message costs a thread-pool round trip each and made file snapshots ~40% slower.
  let batch: Uint8Array[] = [];
  let batched = 0;
  const flush = async (): Promise<void> => {
    const pieces = batch;
    batch = [];
    batched = 0;
    // The next message is read only once this write is done: the file's pace is the stream's pace.
    if (pieces.length > 0) await fh.writev(pieces);
  };
  return {
    async write(chunk) {
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= FILE_BATCH_BYTES) await flush();
    },
    async finish() {
      await flush();
      await fh.sync();
      await close();
      await rename(part, path);
    },
    async fail() {
      await close().catch(() => undefined);
      await rm(part, { force: true });
    },
  };
}

function writableSink(w: Writable): Sink {
  let failure: Error | undefined;
  const onError = (e: Error): void => {
    failure ??= e;
  };
  w.on("error", onError);
  /** Waits for one of the events; rejects on the stream's error or an early close. */
  const settle = (events: string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        for (const ev of [...events, "error", "close"]) w.off(ev, handlers[ev]!);
        if (err !== undefined) reject(err);
        else resolve();
      };
      const handlers: Record<string, (e?: Error) => void> = {};
      for (const ev of events) handlers[ev] = () => done();
      handlers["error"] = (e?: Error) => done(e ?? new Error("the destination failed"));
      handlers["close"] ??= () => done(failure ?? new Error("the destination closed before the snapshot was written"));
      for (const ev of Object.keys(handlers)) w.on(ev, handlers[ev]!);
    });
  const check = (): void => {
    if (failure !== undefined) throw failure;
    if (w.destroyed || w.writableEnded) throw new Error("the destination is closed");
  };
  return {
    async write(chunk) {
      check();
      // Honour backpressure: stop reading the stream until the destination drains.
      if (!w.write(chunk)) await settle(["drain"]);
    },
    async finish() {
      check();
      const finished = settle(["finish"]);
      w.end();
      await finished;
      w.off("error", onError);
    },
    async fail(err) {
      // Like stream.pipeline: a destination that got a broken snapshot is destroyed with the
      // reason. Our error listener stays, so that the 'error' this emits is not an uncaught one;
      // the caller hears the reason from the rejected promise.
      if (!w.destroyed) w.destroy(err);
    },
  };
}

/**
 * Streams a member's backend snapshot into `destination` (a file path, or
 * any `Writable`), verifying it. A path is written as `path.part` and
 * renamed once verified, so `path` only ever holds a complete, checked
 * snapshot. A `Writable` is ended when the snapshot is verified, and
 * destroyed with the error when it is not (as `stream.pipeline` does).
 */
export async function takeSnapshot(ctx: AdminContext, destination: string | Writable, options: SnapshotOptions = {}): Promise<SnapshotInfo> {
  if (typeof destination !== "string" && (typeof destination !== "object" || destination === null || typeof destination.write !== "function")) {
    throw new InvalidOptionError("snapshot destination must be a file path or a Writable");
  }
  if (options.timeoutMs !== undefined && !(options.timeoutMs > 0)) throw new InvalidOptionError("timeoutMs must be a positive number");
  return onEndpoint(ctx, options.endpoint, async (slot) => {
    const endpoint = slot.endpoint.address;
    const sink = typeof destination === "string" ? await fileSink(destination) : writableSink(destination);
    const verifier = new SnapshotVerifier();
    try {
      const stream = await ctx.transport.streamOn(slot, MaintenanceService.method.snapshot, once({}), options.timeoutMs, options.signal);
      for await (const m of stream) {
        // Messages that arrived before an abort are still queued: stop at once, not after them.
        if (options.signal?.aborted) throw new AbortedError(options.signal.reason);
        const bytes = verifier.message(m);
        if (bytes.length > 0) await sink.write(bytes);
        const expected = verifier.databaseBytes;
        options.onProgress?.({ bytes: verifier.bytes, totalBytes: expected === undefined ? undefined : expected + SNAPSHOT_DIGEST_BYTES });
      }
      if (options.signal?.aborted) throw new AbortedError(options.signal.reason);
      const sha256 = verifier.finish(endpoint);
      await sink.finish();
      return { databaseBytes: verifier.bytes - SNAPSHOT_DIGEST_BYTES, bytes: verifier.bytes, sha256, endpoint };
    } catch (e) {
      const err = options.signal?.aborted ? new AbortedError(options.signal.reason) : toEtcdError(e, endpoint);
      await sink.fail(err);
      throw err;
    }
  });
}

/**
 * Verifies a saved snapshot file (as written by `maintenance.snapshot` or
 * `etcdctl snapshot save`): its last 32 bytes must be the SHA-256 of the
 * rest. Reads the file as a stream. Returns the digest as hex.
 *
 * @throws SnapshotVerificationError when the file carries no digest or does not match it.
 */
export async function verifySnapshotFile(path: string): Promise<string> {
  const verifier = new SnapshotVerifier();
  try {
    for await (const chunk of createReadStream(path)) verifier.update(chunk as Buffer);
  } catch (e) {
    throw new InvalidOptionError(`cannot read the snapshot ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return verifier.finish();
}

async function* once<T>(value: T): AsyncIterable<T> {
  yield value;
}
