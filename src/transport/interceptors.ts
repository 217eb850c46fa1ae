/**
 * connect interceptors around a transport that does not run them itself:
 * the wrapper builds the request objects interceptors expect and calls the
 * inner transport with what they changed (headers, signal, message).
 * @module
 */
import { create, type DescMessage, type DescMethodStreaming, type DescMethodUnary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  createContextValues,
  type ContextValues,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";

/** Wraps a transport so connect interceptors see every call, as they would with connect's own transports. */
export function withInterceptors(inner: Transport, interceptors: Interceptor[], baseUrl: string): Transport {
  // What unary and streaming requests share, filled in as connect's own transports fill it.
  const common = (
    method: DescMethodUnary | DescMethodStreaming,
    signal: AbortSignal | undefined,
    header: HeadersInit | undefined,
    contextValues: ContextValues | undefined,
  ): Omit<UnaryRequest, "stream" | "method" | "message"> => ({
    service: method.parent,
    requestMethod: "POST",
    url: `${baseUrl}/${method.parent.typeName}/${method.name}`,
    signal: signal ?? new AbortController().signal,
    header: new Headers(header),
    contextValues: contextValues ?? createContextValues(),
  });
  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const next = chain(
        (req: UnaryRequest<I, O>): Promise<UnaryResponse<I, O>> => inner.unary(req.method, req.signal, timeoutMs, req.header, req.message),
        interceptors,
      );
      return next({ ...common(method, signal, header, contextValues), stream: false, method, message: create(method.input, input) });
    },
    stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      const next = chain(
        (req: StreamRequest<I, O>): Promise<StreamResponse<I, O>> => inner.stream(req.method, req.signal, timeoutMs, req.header, req.message),
        interceptors,
      );
      return next({
        ...common(method, signal, header, contextValues),
        stream: true,
        method,
        message: mapInput(input, (m) => create(method.input, m)),
      });
    },
  };
}

/** The input, each message mapped; ending it (return) ends the source too. */
function mapInput<A, B>(source: AsyncIterable<A>, fn: (a: A) => B): AsyncIterable<B> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<B> {
      const it = source[Symbol.asyncIterator]();
      return {
        async next(): Promise<IteratorResult<B>> {
          const r = await it.next();
          return r.done === true ? { done: true, value: undefined } : { done: false, value: fn(r.value) };
        },
        async return(): Promise<IteratorResult<B>> {
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/**
 * Wraps `next` so the first interceptor runs outermost, the order connect's
 * own transports use (connect does not export its helper for this).
 */
function chain<T>(next: T, interceptors: Interceptor[]): T {
  let fn = next;
  for (let i = interceptors.length - 1; i >= 0; i--) fn = (interceptors[i] as unknown as (n: T) => T)(fn);
  return fn;
}
