/**
 * Piscina worker entry: verifies one batch of the shared ring per task. The task is the
 * batch index — no bytes travel in messages (ENGINE.md). The logic is src/pipeline/verify.ts.
 */
import { workerData } from 'node:worker_threads';
import { warmUpMac } from '../src/protocol/mac.js';
import { BatchVerifier, type VerifyConfig } from '../src/pipeline/verify.js';

const verifier = new BatchVerifier(workerData as VerifyConfig);
warmUpMac(); // optimised before the readiness task returns, so before serving starts

/** Verify batch `batch` in place; resolves with the number of slots judged. A negative index is the start-up readiness probe. */
export default function verifyBatch(batch: number): number {
  return batch < 0 ? 0 : verifier.run(batch);
}
