/**
 * Socket options shared by every dtmesh UDP socket (the engine's, its socket threads',
 * and the echo ceiling in bench/).
 */
import * as dns from 'node:dns';
import { isIP } from 'node:net';

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
