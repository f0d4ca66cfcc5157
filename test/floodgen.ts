/**
 * A junk flood for tests (run as a child process so it gets its own core): sends a mix
 * of unknown-sender, bad-MAC and malformed datagrams to 127.0.0.1:PORT, bounded in time
 * and count, paced at RATE pps (0 = as fast as one Node socket goes). Prints
 * `{"sent": N}` when done.
 *
 * Usage: node floodgen.js PORT SECONDS RATE ROOT_HEX TENANT VICTIM
 */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { encodePacket } from '../src/protocol/codec.js';
import { senderIdOf } from '../src/protocol/ids.js';
import { derivePairKey } from '../src/protocol/keys.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../src/protocol/sha256.js';

const [port, seconds, rate, rootHex, tenant, victim] = process.argv.slice(2);
const MAX_COUNT = 50_000_000;
const sock = dgram.createSocket('udp4');
const root = Buffer.from(rootHex!, 'hex');
const state = new Int32Array(HMAC_STATE_WORDS);
hmacPrecompute(derivePairKey(root, tenant!, 'flood-member', victim!), state, 0);
const now = BigInt(Date.now()) * 1000n;
const unknown = encodePacket({ type: 1, senderId: senderIdOf('stranger'), nonce: 1n, probeId: 0, sendTsUs: now, payload: new Uint8Array(34) }, state);
const badMac = encodePacket({ type: 1, senderId: senderIdOf('flood-member'), nonce: 1n, probeId: 0, sendTsUs: now, payload: new Uint8Array(34) }, state);
badMac.set(randomBytes(16), badMac.length - 16);
const malformed = randomBytes(84);
const junk = [unknown, badMac, malformed];
const t0 = Date.now();
const end = t0 + Number(seconds) * 1000;
const pps = Number(rate);
let sent = 0;
let inFlight = 0;
const onSent = (): void => {
  inFlight--;
};
function step(): void {
  const now = Date.now();
  if (now >= end || sent >= MAX_COUNT) {
    const wait = (): void => {
      if (inFlight > 0) return void setImmediate(wait);
      process.stdout.write(JSON.stringify({ sent }) + '\n');
      sock.close();
    };
    return wait();
  }
  const due = pps > 0 ? Math.floor(((now - t0) * pps) / 1000) : sent + 256;
  for (let n = 0; sent < due && n < 512 && inFlight < 4096; n++, sent++) {
    inFlight++;
    sock.send(junk[sent % 3]!, Number(port), '127.0.0.1', onSent);
  }
  setImmediate(step);
}
sock.bind(0, '127.0.0.1', step);
