/**
 * The request side of a stream that may be opened more than once. A stream
 * that provably never reached a server (refused, never sent) may be opened
 * again elsewhere, but the caller's input iterator has already been read:
 * so every message pulled from it is kept until a server accepts the stream
 * (its response headers arrive), a new attempt sends exactly those messages
 * again, and then goes on with the same iterator. Attempts never read the
 * caller's iterator concurrently.
 * @module
 */

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** The caller's input, readable once per attempt, each attempt seeing every message. */
export class ReplayableInput<T> {
  private readonly source: AsyncIterator<T>;
  /** Messages pulled while no stream was accepted yet; the accepted attempt drains them, then they are dropped. */
  private buffered: T[] = [];
  private recording = true;
  private pending: Promise<{ result: IteratorResult<T>; recorded: boolean }> | undefined;
  private exhausted = false;
  private closed = false;
  private current = 0;

  constructor(input: AsyncIterable<T>) {
    this.source = input[Symbol.asyncIterator]();
  }

  /** The input for a new attempt. Earlier attempts read nothing more from here on. */
  attempt(): AsyncIterable<T> {
    const id = ++this.current;
    let pos = 0;
    const next = async (): Promise<IteratorResult<T>> => {
      for (;;) {
        if (id !== this.current || this.closed) return DONE;
        if (pos < this.buffered.length) {
          const value = this.buffered[pos++]!;
          if (!this.recording && pos === this.buffered.length) {
            this.buffered = [];
            pos = 0;
          }
          return { done: false, value };
        }
        if (this.exhausted) return DONE;
        const { result, recorded } = await this.pull();
        if (id !== this.current || this.closed || result.done === true) return DONE;
        // A recorded message is in the buffer at `pos`: the loop reads it from there.
        if (!recorded) return result;
      }
    };
    // An attempt that ends before it was accepted leaves the input for the next attempt.
    const end = (): void => {
      if (id === this.current && !this.recording) this.close();
    };
    const iterator: AsyncIterator<T> = {
      next,
      return: async (): Promise<IteratorResult<T>> => {
        end();
        return DONE;
      },
      // A transport that failed to write ends the attempt this way (connect-node does).
      throw: async (e?: unknown): Promise<IteratorResult<T>> => {
        end();
        throw e;
      },
    };
    return { [Symbol.asyncIterator]: () => iterator };
  }

  /** A server accepted the stream of the latest attempt: stop keeping messages for replay. */
  accepted(): void {
    this.recording = false;
  }

  /** No attempt will read any more: ends the caller's iterator (its `return()`). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffered = [];
    // Not awaited: a generator suspended inside its own await finishes that first.
    Promise.resolve()
      .then(() => this.source.return?.())
      .catch(() => undefined);
  }

  private pull(): Promise<{ result: IteratorResult<T>; recorded: boolean }> {
    return (this.pending ??= this.source.next().then(
      (result) => {
        this.pending = undefined;
        if (result.done === true) {
          this.exhausted = true;
          return { result, recorded: false };
        }
        if (this.recording && !this.closed) {
          this.buffered.push(result.value);
          return { result, recorded: true };
        }
        return { result, recorded: false };
      },
      (e: unknown) => {
        this.pending = undefined;
        this.exhausted = true;
        throw e;
      },
    ));
  }
}
