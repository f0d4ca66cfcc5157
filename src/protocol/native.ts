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
 * `DTMESH_NATIVE=0` turns the MAC kernel off (benchmarks compare both routes); the
 * addon's state-directory lock ({@link nativeLockFd}) is still used then.
 *
 * Every entry point checks its arguments and throws rather than guess: a `TypeError`
 * for a wrong type or an array over a detached ArrayBuffer, a `RangeError` for a number
 * that is not an integer in range or a span outside its array — and writes nothing
 * then. The engine never passes such arguments (offsets come from the batch layout,
 * lengths are bounded by `maxDatagram`); the checks are a few compares per call
 * (test/protocol/native-fuzz.test.ts drives every entry point with hostile arguments).
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The addon's functions; same arguments and results as the JS kernel's (PROTOCOL.md §2
 * MAC), for in-range arguments. `state` must be an Int32Array, `buf` and `out`/`tag`
 * Uint8Arrays; offsets and lengths integers from 0 to 2^53 - 1 whose spans lie inside
 * their arrays, `suffix` an integer from 0 to 2^32 - 1. Otherwise: TypeError/RangeError,
 * nothing written.
 */
export interface NativeMac {
  tag16(state: Int32Array, stateOffset: number, buf: Uint8Array, offset: number, length: number, suffix: number, out: Uint8Array, outOffset: number): void;
  verify16(state: Int32Array, stateOffset: number, buf: Uint8Array, offset: number, length: number, suffix: number, tag: Uint8Array, tagOffset: number): boolean;
}

/**
 * The addon's bound calls: `bind(state, bytes)` once per (key table, batch ring) —
 * a binding number, or -1 when the thread's 64 bindings are taken — then integers only
 * per call (≈ 50 ns less per MAC: 165 vs 217 ns at 84 B, `bench:micro` "native bound tagAt",
 * same machine as above).
 * The tag is read from / written to `bytes` too. `unbind` releases the arrays (a free
 * binding is left as is). A binding number that is not bound, a wrong array type, a
 * detached array or a span outside the bound arrays throws (TypeError/RangeError),
 * nothing written. Arrays over a SharedArrayBuffer (the engine's) are checked once at
 * `bind`; arrays over a plain ArrayBuffer are re-read at every call, since they can be
 * detached or resized meanwhile.
 */
export interface NativeMacBound {
  bind(state: Int32Array, bytes: Uint8Array): number;
  unbind(binding: number): void;
  tagAt(binding: number, stateOffset: number, offset: number, length: number, suffix: number, outOffset: number): void;
  verifyAt(binding: number, stateOffset: number, offset: number, length: number, suffix: number, tagOffset: number): boolean;
}

/**
 * The native lane's calls (src/native/lane.c; ENGINE.md "Lanes"): a non-blocking UDP socket
 * the addon opens and binds itself, watched by one `uv_poll_t` on the calling thread's
 * event loop, received into with `recvmmsg` straight into the batch ring's slots and sent
 * from with `sendmmsg` out of their reply areas. Used only by src/pipeline/native-lane.ts,
 * which documents the protocol between the two sides. Every call checks its arguments
 * and throws (TypeError/RangeError) rather than guess; `laneOpen` throws an Error whose
 * `code` is the errno name (`EADDRINUSE` …).
 */
export interface NativeLaneCalls {
  /** Always true where these calls exist (Linux). */
  laneAvailable: boolean;
  laneOpen(host: string, port: number, family: 4 | 6, reusePort: boolean, recvBufferBytes: number, sendBufferBytes: number, ttl: number, dscp: number, timestamps: boolean, gso: boolean): object;
  /** [bound address, bound port, effective SO_RCVBUF, kernel timestamps 0|1, effective SO_SNDBUF, TTL, DSCP, UDP GSO for REPLYs 0|1]. */
  laneInfo(h: object): [string, number, number, number, number, number, number, number];
  laneAttach(h: object, bytes: Uint8Array, geometry: Int32Array, counts: Float64Array, onRecv: (b: number, count: number) => number, onSent: (n: number) => void, monoOffsetUs: number): void;
  laneFill(h: object, b: number): void;
  laneSend(h: object, b: number, count: number): number;
  laneSendTo(h: object, buf: Uint8Array, offset: number, length: number, host: string, port: number): number;
  laneClose(h: object): void;
  laneRef(h: object, on: boolean): void;
  laneSlotAddress(h: object, s: number): [string, number];
  /** @internal tests: the next `wouldBlock` send calls report EAGAIN, the next `refuse` messages EPERM, the next `gsoRefuse` GSO messages EIO. */
  laneTestFault(h: object, wouldBlock: number, refuse: number, gsoRefuse?: number): void;
  /** The calling thread's timer slack (prctl PR_SET_TIMERSLACK), ns; returns the previous one, -1 if refused. 0 = the default. */
  threadTimerSlack(ns: number): number;
  /** Bind this thread's clock cell: a Float64Array `[now, offset]` on its own ArrayBuffer (src/clock.ts). */
  clockBind(cell: Float64Array): void;
  /** Write CLOCK_MONOTONIC µs + `cell[1]` into `cell[0]` of this thread's bound cell; allocates nothing. */
  clockNow(): void;
}

/** Where the build puts the addon and its status (dist/native/, beside dist/src/). */
const ADDON = fileURLToPath(new URL('../../native/dtmesh_mac.node', import.meta.url));
const STATUS = fileURLToPath(new URL('../../native/status.json', import.meta.url));

/** The addon's state-directory lock (src/keys/statelock.ts, PROTOCOL.md §3). */
interface NativeLock {
  lockFd(fd: number): number;
}

type Loaded = { mac: (NativeMac & NativeMacBound) | null; built: (NativeMac & NativeMacBound) | null; lock: NativeLock | null; lane: NativeLaneCalls | null; laneStatus: string; status: string };

/** The lane calls of `addon`, or why not (one line). */
function laneOf(addon: Partial<NativeLaneCalls>): { lane: NativeLaneCalls | null; laneStatus: string } {
  if (process.platform !== 'linux') return { lane: null, laneStatus: `not available on ${process.platform} (Linux only)` };
  if (addon.laneAvailable !== true || typeof addon.laneOpen !== 'function') return { lane: null, laneStatus: 'not usable (an older build: run npm run build)' };
  return { lane: addon as NativeLaneCalls, laneStatus: 'native' };
}

function load(): Loaded {
  try {
    const addon = createRequire(import.meta.url)(ADDON) as NativeMac & NativeMacBound & NativeLock & Partial<NativeLaneCalls>;
    const lock = typeof addon.lockFd === 'function' ? addon : null;
    const { lane, laneStatus } = laneOf(addon);
    const fns = ['tag16', 'verify16', 'bind', 'unbind', 'tagAt', 'verifyAt', 'lockFd'] as const;
    if (fns.some((f) => typeof addon[f] !== 'function')) return { mac: null, built: null, lock, lane, laneStatus, status: 'not usable (an older build: run npm run build)' };
    if (process.env.DTMESH_NATIVE === '0') return { mac: null, built: addon, lock, lane, laneStatus, status: 'off (DTMESH_NATIVE=0)' };
    return { mac: addon, built: addon, lock, lane, laneStatus, status: 'native' };
  } catch {
    let why = 'not built';
    try {
      const s = JSON.parse(fs.readFileSync(STATUS, 'utf8')) as { built?: boolean; why?: string };
      if (s.built === false && typeof s.why === 'string') why = `not built: ${s.why}`;
    } catch {
      // no status file: the build did not run
    }
    return { mac: null, built: null, lock: null, lane: null, laneStatus: why, status: process.env.DTMESH_NATIVE === '0' ? 'off (DTMESH_NATIVE=0)' : why };
  }
}

const loaded = load();

/** The native kernel, or null (then the JS kernel and node:crypto are used). */
export const nativeMac: (NativeMac & NativeMacBound) | null = loaded.mac;

/**
 * The addon's MAC functions whenever it was built, even where `DTMESH_NATIVE=0` keeps the
 * engine on the JS kernel: the native kernel's own tests use this, so a CI pass on the
 * JS route still proves the native kernel (null when it was not built).
 */
export const nativeMacBuilt: (NativeMac & NativeMacBound) | null = loaded.built;

/** `'native'`, or why not (one line, for the benchmarks' machine line and the tests). */
export const nativeMacStatus: string = loaded.status;

/**
 * `lockFd(fd)`: an exclusive non-blocking `flock(2)` on the open file `fd` — 0 when taken,
 * else the errno (`EWOULDBLOCK`: another open file holds it). The kernel releases it when
 * the file is closed or the process dies, SIGKILL included: the state-directory lock of
 * PROTOCOL.md §3 (src/keys/statelock.ts). Available whenever the addon is built, even with
 * `DTMESH_NATIVE=0` (which selects the MAC kernel only); null otherwise.
 */
export const nativeLockFd: ((fd: number) => number) | null = loaded.lock !== null ? loaded.lock.lockFd.bind(loaded.lock) : null;

/**
 * The native lane's calls (ENGINE.md "Lanes"), whenever the addon was built on Linux —
 * `DTMESH_NATIVE=0` selects the MAC kernel only and leaves the lane alone; null otherwise
 * (the engine's `lane: 'auto'` then runs the dgram lane).
 */
export const nativeLane: NativeLaneCalls | null = loaded.lane;

/**
 * The addon's allocation-free clock (`clockBind`, `clockNow`: src/clock.ts) wherever the
 * addon was built on Linux and has it; null otherwise (then `performance.now()`).
 */
export const nativeClock: Pick<NativeLaneCalls, 'clockBind' | 'clockNow'> | null =
  loaded.lane !== null && typeof loaded.lane.clockBind === 'function' && typeof loaded.lane.clockNow === 'function' ? loaded.lane : null;

/** `'native'`, or why the native lane is not available (one line: `lane: 'auto'` prints it when it falls back). */
export const nativeLaneStatus: string = loaded.laneStatus;
