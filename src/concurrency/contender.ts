/**
 * What a mutex and an election share: one session's place in the queue
 * under `name/`, how it is taken, waited on, checked and left.
 * @module
 */
import type { ResponseHeader } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { CallOptions } from "../call-options.js";
import { toBytes, type Bytes } from "../kv/bytes.js";
import { Compare } from "../kv/compare.js";
import { Op } from "../kv/op.js";
import { InvalidKeyError, KeyLostError } from "../errors.js";
import { join, waitForPredecessors, type Place } from "./queue.js";
import type { Session } from "./session.js";

/**
 * A session's place under `name/`: the key `name/<lease id in hex>`, and
 * the create revision it was written at while the place is held.
 */
export abstract class Contender {
  /** The prefix of the contenders' keys: `name/`. */
  readonly prefix: Uint8Array;
  /** This session's key: `name/<lease id in hex>`. */
  readonly key: Uint8Array;
  /** @internal Create revision of the key while the place is held; -1 otherwise. */
  protected rev = -1n;
  /** @internal */
  protected hdr: ResponseHeader | undefined;

  /** @internal */
  constructor(
    /** The session whose lease holds the place. */
    readonly session: Session,
    name: Bytes,
  ) {
    const n = toBytes(name, "name");
    if (n.length === 0) throw new InvalidKeyError("name is empty");
    this.prefix = Buffer.concat([n, Buffer.from("/")]);
    this.key = Buffer.concat([this.prefix, Buffer.from(session.idHex)]);
  }

  /**
   * The create revision of this session's key: it grows with every new
   * holder or leader, so systems outside etcd can refuse writes carrying an
   * older one. -1 when not held.
   */
  get fencingToken(): bigint {
    return this.rev;
  }

  /** The header of the last answer about this place (its revision is when it was confirmed); undefined before. */
  get header(): ResponseHeader | undefined {
    return this.hdr;
  }

  /** Aborts when the session ends (lost or closed): the place is no longer safely held. */
  get signal(): AbortSignal {
    return this.session.signal;
  }

  /** @internal The fencing compare: this key with the create revision it was taken at (never holds unheld). */
  protected held(): Compare {
    return Compare.createRevision(this.key, "=", this.rev);
  }

  /**
   * @internal Takes a place with `value` and, unless `wait` is false, waits
   * until it is first; `joined` runs right after joining (e.g. to update a
   * value found from before). Resolves with the place, which is first unless
   * `wait` was false. On failure the place is left and the error explained.
   */
  protected async enqueue(value: Uint8Array, options: CallOptions | undefined, wait: boolean, joined?: (p: Place, call: CallOptions) => Promise<void>): Promise<Place> {
    const budget = this.session.wait(options);
    const view = this.session.view;
    try {
      const place = await join(view, this.prefix, this.key, this.session.id, value, budget.call);
      this.rev = place.rev;
      this.hdr = place.result.header;
      if (joined !== undefined) await joined(place, budget.call);
      if (place.first === undefined || place.first.createRevision === place.rev || !wait) return place;
      await waitForPredecessors(view, this.prefix, place.rev - 1n, budget.signal);
      // The wait may have outlasted our lease: first only if our key is still there.
      const own = await view.get(this.key, budget.call);
      if (own.first?.createRevision !== place.rev) throw new KeyLostError(this.key);
      this.hdr = own.header;
      return { ...place, first: own.first };
    } catch (e) {
      await this.withdraw();
      throw budget.explain(e);
    } finally {
      budget.done();
    }
  }

  /** @internal Leaves the place: deletes this session's key if it is still the one taken. */
  protected async leave(options?: CallOptions): Promise<void> {
    const rev = this.rev;
    this.rev = -1n;
    if (rev < 0n) return;
    const r = await this.session.view.txn().if(Compare.createRevision(this.key, "=", rev)).then(Op.delete(this.key)).commit(options);
    this.hdr = r.header;
  }

  /** @internal Leaves after a failed or abandoned attempt; best effort (the lease ends it anyway). */
  protected async withdraw(): Promise<void> {
    try {
      await this.leave();
    } catch {
      // The session's lease deletes the key at the latest when it ends.
    }
  }
}
