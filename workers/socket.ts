/**
 * Worker entry of one extra socket thread (`serve --sockets N`): a UDP socket on the
 * engine's port, filling its own batches of the shared ring. The logic is src/sockets.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SocketThread, type EngineToSocketMessage, type SocketThreadConfig } from '../src/pipeline/socket-thread.js';

const port = parentPort!;
const thread = new SocketThread(workerData as SocketThreadConfig, port);
port.on('message', (m: EngineToSocketMessage) => thread.onEngine(m));
thread.start();
