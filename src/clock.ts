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
