/**
 * Worker side of the batch hand-off micro-benchmark (bench/micro.ts): the same file is
 * a piscina task (default export) and, with `workerData.mode === 'ring'`, a plain
 * worker thread that serves a SharedArrayBuffer ring with Atomics.wait/notify.
 *
 * Either way one hand-off carries only a batch index; the worker touches the batch in
 * shared memory (one verdict word per slot, as a verifier would write) and hands the
 * index back.
 */
import { isMainThread, workerData } from 'node:worker_threads';

/** Control words of the two single-producer/single-consumer rings. */
export const R_REQ_HEAD = 0;
/** See {@link R_REQ_HEAD}. */
export const R_REQ_TAIL = 1;
/** See {@link R_REQ_HEAD}. */
export const R_RESP_HEAD = 2;
/** See {@link R_REQ_HEAD}. */
export const R_RESP_TAIL = 3;
/** Set to 1 to stop the ring worker. */
export const R_STOP = 4;
/** First queue word; request queue then response queue, `depth` words each. */
export const R_QUEUES = 8;
/** Int32 words of slot metadata per slot (as layout.ts `SLOT_META_WORDS`). */
export const META_WORDS = 8;

/** What the worker is given. */
export interface HandoffConfig {
  mode: 'ring' | 'piscina';
  /** Ring control + queues (ring mode). */
  ctrl?: SharedArrayBuffer;
  /** Queue capacity (ring mode), a power of two. */
  depth?: number;
  /** Slot metadata of every batch. */
  meta: SharedArrayBuffer;
  /** Slots per batch. */
  slots: number;
  /** Ring mode: µs to spin on an empty queue before sleeping in Atomics.wait (0 = sleep at once). */
  spinUs?: number;
}

// (micro.ts imports the constants above on the main thread, where there is no config)
const cfg = (isMainThread ? null : workerData) as HandoffConfig | null;
const meta = cfg === null ? new Int32Array(0) : new Int32Array(cfg.meta);
const slots = cfg?.slots ?? 0;

/** Write a verdict word into every slot of batch `b` (the work a verifier leaves behind). */
function touch(b: number): void {
  const base = b * slots * META_WORDS;
  for (let i = 0; i < slots; i++) meta[base + i * META_WORDS + 1] = 9;
}

/** Piscina task: touch batch `b`, return it. */
export default function handoff(b: number): number {
  touch(b);
  return b;
}

if (cfg !== null && cfg.mode === 'ring') {
  const ctrl = new Int32Array(cfg.ctrl!);
  const mask = cfg.depth! - 1;
  const req = R_QUEUES;
  const resp = R_QUEUES + cfg.depth!;
  const spinMs = (cfg.spinUs ?? 0) / 1000;
  let idleSince = -1;
  for (;;) {
    const head = Atomics.load(ctrl, R_REQ_HEAD);
    const tail = Atomics.load(ctrl, R_REQ_TAIL);
    if (Atomics.load(ctrl, R_STOP) !== 0) break;
    if (head === tail) {
      if (spinMs > 0) {
        const now = performance.now();
        if (idleSince < 0) idleSince = now;
        if (now - idleSince < spinMs) continue;
      }
      Atomics.wait(ctrl, R_REQ_TAIL, tail, 1000);
      continue;
    }
    idleSince = -1;
    const b = ctrl[req + (head & mask)]!;
    Atomics.store(ctrl, R_REQ_HEAD, head + 1);
    touch(b);
    const t = Atomics.load(ctrl, R_RESP_TAIL);
    ctrl[resp + (t & mask)] = b;
    Atomics.store(ctrl, R_RESP_TAIL, t + 1);
    Atomics.notify(ctrl, R_RESP_TAIL);
  }
}
