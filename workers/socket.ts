/**
 * Worker entry of one extra socket thread (`serve --sockets N`): a `dgram` lane on the
 * engine's port, filling its own batches of the shared ring. The logic is
 * src/pipeline/socket-thread.ts (this thread's side) and src/pipeline/thread-lane.ts (the
 * engine's).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SocketThread, type EngineToSocketMessage, type SocketThreadConfig } from '../src/pipeline/socket-thread.js';

const port = parentPort!;
const thread = new SocketThread(workerData as SocketThreadConfig, port);
port.on('message', (m: EngineToSocketMessage) => thread.onEngine(m));
void thread.start();
