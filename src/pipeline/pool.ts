/**
 * Stage 3, parallel: the verification pool (ENGINE.md "Workers"). piscina workers run
 * {@link BatchVerifier} (src/pipeline/verify.ts, entry `workers/verify.ts`) over a batch in
 * place; a task carries the batch index only. This owns the piscina pool and what
 * happens when a worker fails: a batch whose worker threw or died is re-run (verification
 * is idempotent: requests are never overwritten), twice at most; a batch whose worker
 * hangs past the deadline is given up — the task aborted, which makes piscina terminate
 * and replace that worker — and, like a batch that failed three times, every slot of it
 * is judged `overload`, so nothing vanishes and nothing wedges.
 */
import { Piscina } from 'piscina';
import { M_VERDICT } from './layout.js';
import type { BatchRing } from './ring.js';
import type { VerifyConfig } from './verify.js';
import { V_OVERLOAD } from '../protocol/verdict.js';

/**
 * Batches piscina may hand one worker before it finishes the last: with 2 the next batch
 * waits in the worker, not behind a wake-up (`npm run bench:pool`: +9 % at 2 workers,
 * batch 256, 2-core Xeon VM, Node 20).
 */
export const TASKS_PER_WORKER = 2;

/** The pool; see the file header. */
export class VerifyPool {
  /** Batches whose worker failed and that were run again. */
  rerunBatches = 0;
  /** Batches given up because their worker hung past the deadline (judged `overload`). */
  hungBatches = 0;
  private destroyed = false;

  private constructor(
    private readonly pool: Piscina,
    private readonly ring: BatchRing,
    private readonly timeoutMs: number,
    private readonly warn: (message: string) => void,
  ) {}

  /** Start `workers` workers of `filename` with `cfg` and wait until each has loaded (one readiness task each). */
  static async start(filename: string, cfg: VerifyConfig, workers: number, ring: BatchRing, timeoutMs: number, warn: (message: string) => void): Promise<VerifyPool> {
    const pool = new Piscina({
      filename,
      minThreads: workers,
      maxThreads: workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: TASKS_PER_WORKER,
      workerData: cfg,
    });
    // A worker that fails with no task of its own makes Piscina emit 'error': with no
    // listener, an uncaught exception that ends the app. Here it is a warning (its batches
    // are re-run or counted by verify()); at start, the readiness probe below fails too.
    pool.on('error', (err: unknown) => warn(`verification worker failed: ${oneLine(err)}`));
    try {
      await Promise.all(Array.from({ length: workers }, () => pool.run(-1)));
    } catch (err) {
      await pool.destroy().catch(() => undefined);
      throw new Error(`verification workers did not start (${filename}): ${oneLine(err)}`);
    }
    return new VerifyPool(pool, ring, timeoutMs, warn);
  }

  /** Verify batch `b`; `done` runs once it is verified, or given up with every slot `overload`. */
  verify(b: number, done: () => void, attempt = 0): void {
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort(new Error(`verification took longer than ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    this.pool.run(b, { signal: abort.signal }).then(
      () => {
        clearTimeout(timer);
        done();
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (timedOut) {
          this.hungBatches++;
          this.warn(`verification worker hung for ${this.timeoutMs} ms: worker replaced, its batch of ${this.ring.count[b]} datagrams counted as overload`);
        } else if (attempt < 2 && !this.destroyed) {
          this.rerunBatches++;
          this.warn(`verification worker failed (${(err as Error)?.message ?? err}); re-running batch`);
          this.verify(b, done, attempt + 1);
          return;
        }
        const { layout, ints } = this.ring;
        for (let i = 0; i < this.ring.count[b]!; i++) ints[layout.metaIndex(layout.slotNumber(b, i)) + M_VERDICT] = V_OVERLOAD;
        done();
      },
    );
  }

  /** Stop the workers (after the drain). */
  async destroy(): Promise<void> {
    this.destroyed = true;
    await this.pool.destroy();
  }
}

/** An error's message as one line (a worker's error may carry a stack or a multi-line message). */
function oneLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split('\n')[0]!.trim();
}
