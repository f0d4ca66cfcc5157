/**
 * The native MAC kernel (src/native/mac.c), when it was built: the same two functions
 * as the JS kernel ({@link hmacTag16}/{@link hmacVerify16} of ./sha256.ts, PROTOCOL.md
 * §2) computed by the SHA-256 of the OpenSSL inside Node (SHA-NI where the CPU has it),
 * called in place on the caller's bytes with no allocation.
 *
 * Why native code: on the socket thread the MAC is most of what the engine adds to a
 * bare socket (two per datagram: verify the PROBE, sign the REPLY), and no library
 * offers a keyed-state HMAC without a per-call object. Measured (`npm run bench:micro`,
 * Intel Xeon 2.6 GHz with SHA-NI, 2-core VM, Node v20.20.2): 84-byte datagram 216 ns vs
 * 498 ns for the JS kernel and 1901 ns for `createHmac`; 1400 bytes 872 ns vs 3954 ns
 * (JS) and 2652 ns (`createHmac`). It is tested differentially against node:crypto on
 * the same 200,000 cases as the JS kernel (test/protocol/sha256.test.ts).
 *
 * `npm install` builds it (`src/native/build.mjs`, node-gyp); where that is impossible
 * (no compiler) the engine runs on the JS kernel and {@link nativeMacStatus} says why.
 * `DTMESH_NATIVE=0` turns it off (benchmarks compare both routes).
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The addon's functions; same arguments and results as the JS kernel's. */
export interface NativeMac {
  tag16(state: Int32Array, stateOffset: number, buf: Uint8Array, offset: number, length: number, suffix: number, out: Uint8Array, outOffset: number): void;
  verify16(state: Int32Array, stateOffset: number, buf: Uint8Array, offset: number, length: number, suffix: number, tag: Uint8Array, tagOffset: number): boolean;
}

/**
 * The addon's bound calls: `bind(state, bytes)` once per (key table, batch ring) —
 * a binding number, or -1 when the thread's 64 bindings are taken — then integers only
 * per call (≈ 50 ns less per MAC: 165 vs 217 ns at 84 B, `bench:micro` "native bound tagAt",
 * same machine as above).
 * The tag is read from / written to `bytes` too. `unbind` releases the arrays.
 */
export interface NativeMacBound {
  bind(state: Int32Array, bytes: Uint8Array): number;
  unbind(binding: number): void;
  tagAt(binding: number, stateOffset: number, offset: number, length: number, suffix: number, outOffset: number): void;
  verifyAt(binding: number, stateOffset: number, offset: number, length: number, suffix: number, tagOffset: number): boolean;
}

/** Where the build puts the addon and its status (dist/native/, beside dist/src/). */
const ADDON = fileURLToPath(new URL('../../native/dtmesh_mac.node', import.meta.url));
const STATUS = fileURLToPath(new URL('../../native/status.json', import.meta.url));

function load(): { mac: (NativeMac & NativeMacBound) | null; status: string } {
  if (process.env.DTMESH_NATIVE === '0') return { mac: null, status: 'off (DTMESH_NATIVE=0)' };
  try {
    const mac = createRequire(import.meta.url)(ADDON) as NativeMac & NativeMacBound;
    const fns = ['tag16', 'verify16', 'bind', 'unbind', 'tagAt', 'verifyAt'] as const;
    if (fns.some((f) => typeof mac[f] !== 'function')) return { mac: null, status: 'not usable (an older build: run npm run build)' };
    return { mac, status: 'native' };
  } catch {
    let why = 'not built';
    try {
      const s = JSON.parse(fs.readFileSync(STATUS, 'utf8')) as { built?: boolean; why?: string };
      if (s.built === false && typeof s.why === 'string') why = `not built: ${s.why}`;
    } catch {
      // no status file: the build did not run
    }
    return { mac: null, status: why };
  }
}

const loaded = load();

/** The native kernel, or null (then the JS kernel and node:crypto are used). */
export const nativeMac: (NativeMac & NativeMacBound) | null = loaded.mac;

/** `'native'`, or why not (one line, for the benchmarks' machine line and the tests). */
export const nativeMacStatus: string = loaded.status;
