/**
 * The engine's handle on one extra socket thread (`serve --sockets N`): a {@link Lane}
 * whose stages 1 and 5 run in another thread (src/pipeline/socket-thread.ts: a lane of the
 * engine's kind there, `NativeLane` or `DgramLane`). It owns the worker and the counts the thread reports; it hands on
 * the thread's filled batches and `sent` reports to the pipeline, and passes `send`,
 * `stop` and `close` the other way.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DtmeshError } from '../errors.js';
import type { Lane, LaneCounts, LaneSink } from './lane.js';
import type { EngineToSocketMessage, SocketThreadConfig, SocketThreadMessage } from './socket-thread.js';

const socketWorkerFile = fileURLToPath(new URL('../../workers/socket.js', import.meta.url));

/** A socket thread, as the pipeline sees it. */
export class ThreadLane implements Lane {
  readonly index: number;
  readonly counts: LaneCounts = { received: 0, overload: 0, sendErrors: 0 };
  port = 0;
  private isDrained = false;
  private closedFlag = false;
  private onClosed: (() => void) | null = null;
  private readonly worker: Worker;

  private constructor(
    cfg: SocketThreadConfig,
    private readonly sink: LaneSink,
  ) {
    this.index = cfg.index;
    this.worker = new Worker(socketWorkerFile, { workerData: cfg });
  }

  /** Start the thread and wait until its socket is bound; a one-line {@link DtmeshError} when it cannot bind. */
  static async start(cfg: SocketThreadConfig, sink: LaneSink): Promise<ThreadLane> {
    const lane = new ThreadLane(cfg, sink);
    await new Promise<void>((resolve, reject) => {
      lane.worker.on('message', (m: SocketThreadMessage) => {
        if (m.t === 'ready') {
          lane.port = m.port;
          resolve();
        } else if (m.t === 'error') {
          lane.gone();
          void lane.worker.terminate(); // it could not bind: nothing of the pipeline's is in it
          reject(new DtmeshError(m.message));
        } else lane.onMessage(m);
      });
      lane.worker.on('error', (e) => {
        // a socket thread that crashed: its batches in the pipeline are still collected; its port stops serving
        lane.gone();
        sink.failed(lane, `socket thread ${lane.index} failed: ${e.message}`);
        reject(new DtmeshError(`socket thread ${lane.index} failed: ${e.message}`));
      });
    });
    return lane;
  }

  get drained(): boolean {
    return this.isDrained;
  }

  private onMessage(m: Exclude<SocketThreadMessage, { t: 'ready' } | { t: 'error' }>): void {
    const c = this.counts;
    c.received += m.received;
    c.overload += m.overload;
    c.sendErrors += m.sendErrors;
    if (m.t === 'batch') this.sink.filled(this, m.b, m.count);
    else if (m.t === 'sent') this.sink.sent(this);
    else if (m.t === 'drained') {
      this.isDrained = true;
      this.sink.drained(this);
    } else {
      this.closedFlag = true;
      this.onClosed?.();
    }
  }

  /** The thread is gone: nothing more will come from it. */
  private gone(): void {
    this.isDrained = this.closedFlag = true;
    this.onClosed?.();
  }

  sendBatch(b: number): void {
    if (this.closedFlag) this.sink.sent(this); // gone: nothing of its batches can be sent
    else this.post({ t: 'send', b });
  }

  kick(): void {
    // the thread hands its partial batches over by itself (when none of its batches is with the engine)
  }

  stop(): void {
    if (!this.closedFlag) this.post({ t: 'stop' });
  }

  async close(): Promise<void> {
    if (!this.closedFlag) {
      await new Promise<void>((resolve) => {
        this.onClosed = resolve;
        this.post({ t: 'close' });
      });
    }
    await this.worker.terminate();
  }

  private post(m: EngineToSocketMessage): void {
    this.worker.postMessage(m);
  }
}
