/**
 * Socket options shared by every dtmesh UDP socket (the engine's, its socket threads',
 * and the echo ceiling in bench/).
 */
import * as dns from 'node:dns';
import { isIP } from 'node:net';
import { formatHostPort } from '../options.js';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The `lookup` of `dgram.createSocket`: IP literals — every reply address, which is the
 * `rinfo.address` of a request — are answered at once; names go to `dns.lookup`.
 * `dns.lookup` answers a literal one `process.nextTick` later, on every `send`: 0.01–0.10 µs
 * of the socket thread per datagram over 4 runs of `npm run bench:micro -- --only dgram`
 * (e.g. 1317 vs 1298 ns per send, 2-core Xeon VM, Node 20).
 */
export function literalLookup(address: string, family: number | dns.LookupOneOptions, callback: LookupCallback): void {
  const f = isIP(address);
  if (f !== 0) callback(null, address, f);
  else dns.lookup(address, family as dns.LookupOneOptions, callback);
}

/**
 * True when no reply can go to `address:port` (PROTOCOL.md §4 u1, updated): UDP source
 * port 0, or an unspecified, multicast or broadcast source address — `0.0.0.0/8`,
 * `224.0.0.0/4` (multicast), `240.0.0.0/4` (reserved, with `255.255.255.255`), `::`,
 * `ff00::/8`, and those inside IPv4-mapped IPv6 (`::ffff:a.b.c.d`). A datagram from such
 * a source is judged `malformed` before any crypto; the kernel never lets one be
 * answered (`send` to port 0 throws `ERR_SOCKET_BAD_PORT`), and answering one would make
 * the agent a reflector. A subnet's directed broadcast cannot be told from a host
 * address without the interface table; the kernel refuses to send there without
 * `SO_BROADCAST` (counted as `send_errors`).
 *
 * Hot path (runs per datagram on the socket thread, with `rinfo`'s strings): a few
 * character reads, no allocation, never throws.
 */
export function unanswerable(address: string, port: number): boolean {
  if (port <= 0 || port > 65535) return true;
  let i = 0;
  const n = address.length;
  if (n > 7 && address.charCodeAt(0) === 58 /* : */ && address.startsWith('::ffff:') && address.indexOf('.', 7) > 0) i = 7; // IPv4-mapped
  else if (address.indexOf(':') >= 0) {
    if (address === '::') return true;
    // ff00::/8 multicast: a first group of four hex digits starting with `ff` (`ff02::1`; `ff::1` is not)
    return (address.charCodeAt(0) | 0x20) === 102 && (address.charCodeAt(1) | 0x20) === 102 && address.indexOf(':') === 4;
  }
  // IPv4 dotted quad from i: the first octet decides
  let first = 0;
  for (; i < n; i++) {
    const c = address.charCodeAt(i);
    if (c === 46 /* . */) break;
    first = first * 10 + (c - 48);
  }
  return first === 0 || first >= 224;
}

/** One line for a bind of `host:port` that failed with errno name `code` (either lane; an IPv6 host in brackets, as `--listen` takes it). */
export function bindErrorLine(code: string | undefined, host: string, port: number): string {
  return code === 'EADDRINUSE'
    ? `${formatHostPort(host, port)} is already in use: pick another port with --listen or stop the other process`
    : code === 'EADDRNOTAVAIL'
      ? `${host} is not an address of this machine`
      : code === 'EACCES'
        ? `not allowed to bind ${formatHostPort(host, port)} (ports below 1024 need privileges)`
        : code === 'ENODEV'
          ? `${host}: its %scope names no network interface of this machine`
          : `cannot bind ${formatHostPort(host, port)}: ${code ?? 'not an address'}`;
}
