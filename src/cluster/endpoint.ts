/**
 * Endpoint addresses as users write them: `host:port`, `http://host:port`,
 * `https://host:port` or `[::1]:port`.
 * @module
 */
import { isIP } from "node:net";
import { InvalidOptionError } from "../errors.js";

/** A parsed etcd client endpoint. */
export interface Endpoint {
  /** `host:port` as shown in errors and status, e.g. `127.0.0.1:2379`. */
  readonly address: string;
  /** Origin for HTTP/2, e.g. `https://127.0.0.1:2379`. */
  readonly origin: string;
  /** Host name or IP, without IPv6 brackets. */
  readonly host: string;
  /** TCP port (2379 when the address names none). */
  readonly port: number;
  /** True when the endpoint speaks TLS. */
  readonly secure: boolean;
}

/** etcd's well-known client port, used when an address names none. */
export const DEFAULT_CLIENT_PORT = 2379;

/**
 * Parses one endpoint. A bare `host:port` is plaintext unless `secure` says
 * otherwise (for example when TLS options were given).
 *
 * @throws InvalidOptionError for an address that cannot be an etcd endpoint.
 */
export function parseEndpoint(input: string, secure = false): Endpoint {
  const text = input.trim();
  let isSecure = secure;
  let rest = text;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (name === "https") isSecure = true;
    else if (name === "http") isSecure = false;
    else throw new InvalidOptionError(`endpoint "${input}": unsupported scheme "${name}" (use http or https)`);
    rest = text.slice(scheme[0].length);
  }
  rest = rest.replace(/\/+$/, "");
  if (rest === "" || rest.includes("/")) {
    throw new InvalidOptionError(`endpoint "${input}": expected host:port, http://host:port or https://host:port`);
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw new InvalidOptionError(`endpoint "${input}": unbalanced "[" in IPv6 address`);
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) throw new InvalidOptionError(`endpoint "${input}": junk after IPv6 address`);
    portText = after === "" ? undefined : after.slice(1);
  } else {
    const colon = rest.lastIndexOf(":");
    host = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
  }
  if (rest.startsWith("[") ? isIP(host) !== 6 : host.includes(":")) {
    throw new InvalidOptionError(`endpoint "${input}": an IPv6 address goes in brackets, as [::1]:2379; anything else is host:port`);
  }
  const port = portText === undefined ? DEFAULT_CLIENT_PORT : portText === "" || !/^\d+$/.test(portText) ? NaN : Number(portText);
  if (host === "" || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new InvalidOptionError(`endpoint "${input}": invalid host or port`);
  }
  const hostPart = host.includes(":") ? `[${host}]` : host;
  const address = `${hostPart}:${port}`;
  return { address, origin: `${isSecure ? "https" : "http"}://${address}`, host, port, secure: isSecure };
}
