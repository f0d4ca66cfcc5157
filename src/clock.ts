/**
 * The receiver clock (PROTOCOL.md §6): wall-clock microseconds since the Unix epoch,
 * `performance.timeOrigin + performance.now()`, as a float.
 */
import { performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;

/** Wall-clock µs since the Unix epoch (PROTOCOL.md §6). No allocation. */
export function nowUs(): number {
  return (origin + performance.now()) * 1000;
}

/** Sandwiches tried by {@link monoOffsetUs}; it keeps the tightest. */
const OFFSET_TRIES = 64;

/**
 * `nowUs() − CLOCK_MONOTONIC` in µs, for native code that reads CLOCK_MONOTONIC itself
 * (src/native/lane.c turns kernel stamps into {@link nowUs} time with it). Both clocks are
 * libuv's `uv_hrtime` underneath, so the offset is a constant: measured here with
 * `nowUs()` read between two `process.hrtime` reads, the tightest of
 * {@link OFFSET_TRIES}, so a preemption between the reads cannot skew it. It is the same
 * on every thread of the process (worker threads share `performance.timeOrigin`).
 */
export function monoOffsetUs(): number {
  let best = Infinity;
  let off = 0;
  for (let i = 0; i < OFFSET_TRIES; i++) {
    const a = process.hrtime.bigint();
    const p = nowUs();
    const b = process.hrtime.bigint();
    const w = Number(b - a);
    if (w < best) {
      best = w;
      off = p - Number(a + b) / 2000;
    }
  }
  return off;
}
