/**
 * Lease IDs and TTLs as the API takes them: IDs are positive 64-bit signed
 * integers (`bigint`), TTLs whole seconds (`number`).
 * @module
 */
import { randomBytes } from "node:crypto";
import { InvalidOptionError } from "../errors.js";

/** The largest lease ID etcd accepts (IDs are positive int64). */
export const MAX_LEASE_ID = (1n << 63n) - 1n;

/**
 * A random lease ID in [1, 2^63 - 1]. Granting with an ID the client chose
 * makes the grant safe to retry: a retry cannot create a second lease, and
 * "already exists" can be checked to be ours (see `grant-revoke.ts`).
 * Two clients picking the same one is a 1 in 2^63 chance per pair of grants.
 */
export function randomLeaseId(): bigint {
  for (;;) {
    const id = randomBytes(8).readBigUInt64BE() & MAX_LEASE_ID;
    if (id !== 0n) return id;
  }
}

/** Checks a lease ID given by the caller. @throws InvalidOptionError */
export function checkLeaseId(id: unknown, what = "lease ID"): bigint {
  if (typeof id !== "bigint") {
    throw new InvalidOptionError(`${what} must be a bigint (e.g. 123n or BigInt(text)), got ${typeof id}`);
  }
  if (id <= 0n || id > MAX_LEASE_ID) {
    throw new InvalidOptionError(`${what} must be between 1 and 2^63 - 1, got ${id}`);
  }
  return id;
}

/**
 * Checks a TTL given by the caller: whole seconds, at least 1. The server
 * raises TTLs below its minimum (about 1.5 x the election timeout) to that
 * minimum, and refuses TTLs above 9,000,000,000 s with `LeaseTtlTooLargeError`.
 * @throws InvalidOptionError
 */
export function checkTtl(ttl: unknown): number {
  if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl < 1) {
    throw new InvalidOptionError(`lease TTL must be a whole number of seconds >= 1, got ${typeof ttl === "number" ? ttl : typeof ttl}`);
  }
  return ttl;
}

/** A lease ID as etcdctl prints it (hexadecimal). */
export function formatLeaseId(id: bigint): string {
  return id.toString(16);
}
