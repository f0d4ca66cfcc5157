/**
 * The receiver clock (PROTOCOL.md §6): wall-clock microseconds since the Unix epoch,
 * `performance.timeOrigin + performance.now()`, as a float.
 *
 * On Node 20, `performance.now()` allocates (an array from `process.hrtime` and a heap
 * number, about 40 bytes a call; measured: 4 M calls, 125 young-generation collections),
 * and the engine reads the clock several times per batch. Where the addon is built, the
 * same clock is read without allocating: CLOCK_MONOTONIC (what `performance.now()` is
 * made of, through libuv) plus this thread's offset to the wall-clock origin, measured
 * once here ({@link monoOffsetUs}), written by the addon into a cell read from JS.
 */
import { performance } from 'node:perf_hooks';
import { nativeClock } from './protocol/native.js';

const origin = performance.timeOrigin;

/** The clock through `performance.now()` (the definition; the fallback without the addon). */
function perfNowUs(): number {
  return (origin + performance.now()) * 1000;
}

/** Sandwiches tried by {@link measureOffset}; it keeps the tightest. */
const OFFSET_TRIES = 64;

/** `perfNowUs() − CLOCK_MONOTONIC` µs, read between two `process.hrtime` reads, the tightest of {@link OFFSET_TRIES}. */
function measureOffset(): number {
  let best = Infinity;
  let off = 0;
  for (let i = 0; i < OFFSET_TRIES; i++) {
    const a = process.hrtime.bigint();
    const p = perfNowUs();
    const b = process.hrtime.bigint();
    const w = Number(b - a);
    if (w < best) {
      best = w;
      off = p - Number(a + b) / 2000;
    }
  }
  return off;
}

/** `[now, offset]` on its own ArrayBuffer (never moved by the GC), bound to this thread in the addon. */
const cell = new Float64Array(new ArrayBuffer(16));
const tick: (() => void) | null = nativeClock !== null ? nativeClock.clockNow : null;
if (nativeClock !== null) {
  cell[1] = measureOffset();
  nativeClock.clockBind(cell);
}

/**
 * This thread's clock cell: `clockCell[0]` is the time {@link clockTick} last read (µs,
 * as {@link nowUs}). The hot path reads the clock through it: a float returned from a call
 * the JIT does not inline is boxed on the heap, a typed-array element never is.
 */
export const clockCell: Float64Array = cell.subarray(0, 1);

/** Read the clock into `clockCell[0]`; returns nothing (nothing to box). No allocation where the addon is built. */
export function clockTick(): void {
  if (tick !== null) tick();
  else cell[0] = perfNowUs();
}

/** Wall-clock µs since the Unix epoch (PROTOCOL.md §6). No allocation where the addon is built and the call is inlined; the hot path uses {@link clockTick}. */
export function nowUs(): number {
  clockTick();
  return cell[0]!;
}

/** True when {@link nowUs} reads the addon's clock (allocation-free), false on `performance.now()`. */
export const clockIsNative: boolean = tick !== null;

/**
 * `nowUs() − CLOCK_MONOTONIC` in µs, for native code that reads CLOCK_MONOTONIC itself
 * (src/native/lane.c turns kernel stamps into {@link nowUs} time with it). Both clocks are
 * libuv's `uv_hrtime` underneath, so the offset is a constant: with the addon's clock it
 * is exactly the one {@link nowUs} adds; without, measured with {@link perfNowUs} read
 * between two `process.hrtime` reads, the tightest of {@link OFFSET_TRIES}, so a
 * preemption between the reads cannot skew it.
 */
export function monoOffsetUs(): number {
  return tick !== null ? cell[1]! : measureOffset();
}
