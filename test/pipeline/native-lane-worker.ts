/**
 * Fixture of test/pipeline/native-lane.test.ts: a worker thread that opens a native lane
 * (src/pipeline/native-lane.ts) on its own event loop, receives, and is then terminated by
 * the test with the socket still open — the addon's async cleanup hook must close it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LaneSink } from '../../src/pipeline/lane.js';
import { NativeLane } from '../../src/pipeline/native-lane.js';
import { BatchRing } from '../../src/pipeline/ring.js';

const { host } = workerData as { host: string };
const ring = new BatchRing(2, 8, 2048);
const lane = await NativeLane.open({ index: 0, ring, host, port: 0, reusePort: false, recvBufferBytes: 1 << 20 });
let batches = 0;
const sink: LaneSink = {
  filled: () => void batches++,
  takePartial: () => true,
  sent: () => {},
  drained: () => {},
  failed: () => {},
};
lane.start(sink);
parentPort!.on('message', () => parentPort!.postMessage({ t: 'counts', received: lane.counts.received, batches }));
parentPort!.postMessage({ t: 'ready', port: lane.port });
