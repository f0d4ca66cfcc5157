/**
 * Garbage-collection pauses of this thread's isolate over a window (PerformanceObserver
 * 'gc'), so a tail is never left unexplained: a GC pause stops the thread that reads the
 * socket, and every datagram that arrives meanwhile waits it out (MEASUREMENT.md §2, "a
 * slow prober is never mistaken for a slow path"; the benchmark's receive→verdict tail,
 * ENGINE.md). The prober reports them in its generator health, `npm run bench` beside the
 * responder's half-rate tail.
 *
 * Node hands GC entries to observers a loop turn or more after the pause, so a pause is
 * counted by when it began, not when its entry arrived: one that began before
 * {@link GcPauses.begin} is left out even if delivered after it, one that began inside
 * the window is counted even if delivered after its end ({@link GcPauses.summary} takes
 * the entries still queued).
 */
import { performance, PerformanceObserver } from 'node:perf_hooks';

/** GC pauses in a window: how many, their sum and the longest, ms. */
export interface GcSummary {
  count: number;
  total_ms: number;
  max_ms: number;
}

/** Counts this isolate's GC pauses from {@link begin} on; see the file header. */
export class GcPauses {
  /** Performance-timeline ms of {@link begin}; pauses that began earlier are not counted (Infinity: not begun). */
  private from = Infinity;
  /** Performance-timeline ms of {@link end}; pauses that began later are not counted. */
  private until = Infinity;
  private count = 0;
  private totalMs = 0;
  private maxMs = 0;
  private readonly observer: PerformanceObserver;

  constructor() {
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.record(e.startTime, e.duration);
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** Start a window now (or at `at`, performance-timeline ms): earlier pauses are forgotten. */
  begin(at: number = performance.now()): void {
    this.from = at;
    this.until = Infinity;
    this.count = 0;
    this.totalMs = 0;
    this.maxMs = 0;
  }

  /** Close the window now (or at `at`): pauses that begin later are not counted. */
  end(at: number = performance.now()): void {
    this.until = at;
  }

  /** A pause that began at `startTime` (performance-timeline ms) and lasted `durationMs`; the observer calls it, tests feed their own. */
  record(startTime: number, durationMs: number): void {
    if (startTime < this.from || startTime > this.until) return;
    this.count++;
    this.totalMs += durationMs;
    if (durationMs > this.maxMs) this.maxMs = durationMs;
  }

  /** The window's pauses so far (entries still queued included), total to 0.1 ms and longest to 0.01 ms. */
  summary(): GcSummary {
    for (const e of this.observer.takeRecords()) this.record(e.startTime, e.duration);
    return { count: this.count, total_ms: Math.round(this.totalMs * 10) / 10, max_ms: Math.round(this.maxMs * 100) / 100 };
  }

  /** Stop observing (the entries still queued are counted first; {@link summary} stays readable). */
  stop(): void {
    for (const e of this.observer.takeRecords()) this.record(e.startTime, e.duration);
    this.observer.disconnect();
  }
}
