/**
 * The request side of one bidirectional stream: messages pushed by the owner,
 * read by the transport as an async iterable.
 * @module
 */

/**
 * A queue of request messages for exactly one stream attempt. A stream owner
 * makes a fresh queue for every stream it opens, so a broken stream can never
 * leave its successor with a half-read input.
 *
 * Until {@link RequestQueue.established} is called (the server answered),
 * everything pushed is kept: should the layer below open the stream again
 * because the first try was refused before reaching the server, a second
 * reader starts from the first message, and the first reader ends. After
 * that, messages are dropped once read.
 */
export class RequestQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private readerGeneration = 0;
  private keepAll = true;
  private ended = false;
  private readerStopped = false;

  /** Messages pushed and not read yet. */
  get pending(): number {
    return this.items.length - this.head;
  }

  /** Appends a message; a reader waiting for one gets it at once. */
  push(item: T): void {
    if (this.ended) return;
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      if (this.keepAll) {
        this.items.push(item);
        this.head++;
      }
      w({ value: item, done: false });
      return;
    }
    this.items.push(item);
  }

  /** The server answered on this stream: stop keeping messages already read. */
  established(): void {
    this.keepAll = false;
    this.compact();
  }

  /** Ends the request side: the reader finishes and nothing queued is sent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.items = [];
    this.head = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const generation = ++this.readerGeneration;
    this.readerStopped = false;
    if (generation > 1) {
      // A second reader: the first attempt never reached the server. End the
      // first reader and replay everything to the new one.
      const w = this.waiter;
      this.waiter = undefined;
      w?.({ value: undefined, done: true });
      if (this.keepAll) this.head = 0;
    }
    return {
      next: (): Promise<IteratorResult<T>> => this.next(generation),
      // A reader that stops (return) or is aborted (throw, as connect does) ends only
      // itself: the layer below may still open the stream again with a new reader.
      // The owner ends the queue itself when it gives the stream up.
      return: (): Promise<IteratorResult<T>> => this.stopReader(generation),
      throw: (): Promise<IteratorResult<T>> => this.stopReader(generation),
    };
  }

  private stopReader(generation: number): Promise<IteratorResult<T>> {
    if (generation === this.readerGeneration) {
      this.readerStopped = true;
      const w = this.waiter;
      this.waiter = undefined;
      w?.({ value: undefined, done: true });
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  private next(generation: number): Promise<IteratorResult<T>> {
    if (this.ended || this.readerStopped || generation !== this.readerGeneration) return Promise.resolve({ value: undefined, done: true });
    if (this.head < this.items.length) {
      const value = this.items[this.head]!;
      if (this.keepAll) this.head++;
      else {
        this.items[this.head++] = undefined as T;
        if (this.head === this.items.length) this.compact();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.waiter !== undefined) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  private compact(): void {
    if (this.head === 0) return;
    this.items = this.items.slice(this.head);
    this.head = 0;
  }
}
