/**
 * Where a failed call broke, which decides whether it is safe to retry:
 * a request that never left the client may be resent even if it is a write;
 * one lost with its connection may have been applied.
 * @module
 */

const unsent = new WeakSet<object>();
const connectionLost = new WeakSet<object>();
const answerUnreadable = new WeakSet<object>();

/** Marks `err` as belonging to a request that never reached the server; returns it. */
export function markUnsent<E extends object>(err: E): E {
  unsent.add(err);
  return err;
}

/** Marks `err` as a call that was under way when its connection failed (the request may have been applied); returns it. */
export function markConnectionLost<E extends object>(err: E): E {
  connectionLost.add(err);
  return err;
}

/**
 * Marks `err` as a call the server answered with something that could not be
 * read (over the receive limit, not protobuf, badly framed): the request was
 * handled, so a write may have been applied; returns it.
 */
export function markAnswerUnreadable<E extends object>(err: E): E {
  answerUnreadable.add(err);
  return err;
}

function chainHas(set: WeakSet<object>, err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === "object" && e !== null && depth < 8; depth++) {
    if (set.has(e)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** True when `err` (or an error in its `cause` chain) was marked by {@link markUnsent}. */
export function isUnsent(err: unknown): boolean {
  return chainHas(unsent, err);
}

/** True when `err` (or its cause chain) was marked by {@link markConnectionLost}. */
export function isConnectionLost(err: unknown): boolean {
  return chainHas(connectionLost, err);
}

/** True when `err` (or its cause chain) was marked by {@link markAnswerUnreadable}. */
export function isAnswerUnreadable(err: unknown): boolean {
  return chainHas(answerUnreadable, err);
}

/**
 * Gives `to` the marks `from` carries (on itself or its causes), so an error
 * mapped to another class still says where the call broke; returns `to`.
 */
export function carryMarks<E extends object>(from: unknown, to: E): E {
  if (isUnsent(from)) unsent.add(to);
  if (isConnectionLost(from)) connectionLost.add(to);
  if (isAnswerUnreadable(from)) answerUnreadable.add(to);
  return to;
}
