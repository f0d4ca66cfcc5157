/**
 * The baseline the engine is measured against: a naive single-thread responder of the
 * same protocol. Per datagram, on the one thread that owns the socket: parse with the
 * codec's layout, look the sender up, `crypto.createHmac` to verify, clock check, a
 * strict per-sender high-water mark, `createHmac` again to sign the REPLY, one `send`.
 * No batching, no workers, no precomputed HMAC states — what one would write first.
 *
 * It answers exactly like the engine (PROTOCOL.md §3: same length, probe_id and
 * payload, its own sender_id, fresh nonce and send_ts_us, fresh MAC), so the load
 * generator can check its replies the same way.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import * as dgram from 'node:dgram';
import { HEADER_LEN, MAC_LEN, MAGIC_U32, MIN_DATAGRAM, OFF_NONCE, OFF_SEND_TS, OFF_SENDER_ID, OFF_TYPE, OFF_VER, SENDER_ID_LEN, TYPE_PROBE, TYPE_PUNCH_HINT, TYPE_REPLY, VERSION_V1 } from '../src/protocol/wire.js';
import { readU32, readU64Number, writeU64Number } from '../src/protocol/codec.js';
import { senderIdOf } from '../src/protocol/ids.js';
import { derivePairKey } from '../src/protocol/keys.js';
import type { BaselineCounts } from './echo.js';
import { nowUs } from '../src/clock.js';

const CLOCK_WINDOW_US = 5_000_000;

interface Peer {
  idLo: number;
  key: Buffer;
  seen: boolean;
  hwmHi: number;
  hwmLo: number;
}

/** Options of the naive responder. */
export interface NaiveOptions {
  root: Uint8Array;
  tenant: string;
  agent: string;
  peers: readonly string[];
  host?: string;
  port?: number;
  recvBufferBytes?: number;
  maxDatagram?: number;
}

/** A running naive responder. */
export class NaiveResponder {
  received = 0;
  replied = 0;
  readonly dropped: Record<string, number> = {
    malformed: 0,
    downgrade: 0,
    reflected: 0,
    unknown_sender: 0,
    bad_mac: 0,
    stale: 0,
    replay: 0,
  };
  private readonly byHi = new Map<number, Peer[]>();
  private readonly selfId: Uint8Array;
  private readonly selfHi: number;
  private readonly selfLo: number;
  private readonly startUs = Math.floor(nowUs());
  private readonly maxDatagram: number;
  private readonly suffix = Buffer.alloc(4);
  private nonce = Math.ceil(nowUs());

  private constructor(private readonly socket: dgram.Socket, o: NaiveOptions) {
    this.selfId = senderIdOf(o.agent);
    this.selfHi = readU32(this.selfId, 0);
    this.selfLo = readU32(this.selfId, 4);
    this.maxDatagram = o.maxDatagram ?? 2048;
    for (const p of o.peers) {
      if (p === o.agent) continue;
      const id = senderIdOf(p);
      const hi = readU32(id, 0);
      const list = this.byHi.get(hi) ?? [];
      list.push({ idLo: readU32(id, 4), key: Buffer.from(derivePairKey(o.root, o.tenant, o.agent, p)), seen: false, hwmHi: 0, hwmLo: 0 });
      this.byHi.set(hi, list);
    }
    socket.on('message', this.onMessage);
  }

  /** Bind and serve. */
  static async start(o: NaiveOptions): Promise<NaiveResponder> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.port ?? 0, o.host ?? '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(o.recvBufferBytes ?? 4 << 20);
    } catch {
      // capped by net.core.rmem_max, as for the engine
    }
    socket.on('error', () => undefined);
    return new NaiveResponder(socket, o);
  }

  /** The bound port. */
  get port(): number {
    return this.socket.address().port;
  }

  /** `HMAC-SHA256(key, wire[0:34+N] || u32be(N))[0:16]` with node:crypto (PROTOCOL.md §2). */
  private mac(key: Buffer, msg: Buffer, body: number): Buffer {
    this.suffix.writeUInt32BE(body - HEADER_LEN, 0);
    return createHmac('sha256', key).update(msg.subarray(0, body)).update(this.suffix).digest();
  }

  private drop(reason: string): void {
    this.dropped[reason]!++;
  }

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.received++;
    const len = msg.length;
    // u1-u3 (PROTOCOL.md §4)
    if (len < MIN_DATAGRAM || len > this.maxDatagram || readU32(msg, 0) !== MAGIC_U32) return this.drop('malformed');
    const type = msg[OFF_TYPE]!;
    if (type < TYPE_PROBE || type > TYPE_PUNCH_HINT) return this.drop('malformed');
    if (msg[OFF_VER] !== VERSION_V1) return this.drop('downgrade');
    const idHi = readU32(msg, OFF_SENDER_ID);
    const idLo = readU32(msg, OFF_SENDER_ID + 4);
    if (idHi === this.selfHi && idLo === this.selfLo) return this.drop('reflected');
    // c1-c4
    const peer = this.byHi.get(idHi)?.find((p) => p.idLo === idLo);
    if (peer === undefined) return this.drop('unknown_sender');
    const body = len - MAC_LEN;
    if (!timingSafeEqual(this.mac(peer.key, msg, body).subarray(0, MAC_LEN), msg.subarray(body, len))) return this.drop('bad_mac');
    const now = nowUs();
    const ts = readU64Number(msg, OFF_SEND_TS);
    if (Math.abs(ts - now) > CLOCK_WINDOW_US || (!peer.seen && ts < this.startUs)) return this.drop('stale');
    const nHi = readU32(msg, OFF_NONCE);
    const nLo = readU32(msg, OFF_NONCE + 4);
    if (peer.seen && (nHi < peer.hwmHi || (nHi === peer.hwmHi && nLo <= peer.hwmLo))) return this.drop('replay');
    peer.seen = true;
    peer.hwmHi = nHi;
    peer.hwmLo = nLo;
    if (type !== TYPE_PROBE) return; // accepted REPLY / PUNCH_HINT: nothing to send in this baseline
    // REPLY (PROTOCOL.md §3), built in place: dgram hands every message its own Buffer
    msg[OFF_TYPE] = TYPE_REPLY;
    msg.set(this.selfId.subarray(0, SENDER_ID_LEN), OFF_SENDER_ID);
    writeU64Number(msg, OFF_NONCE, this.nonce++);
    writeU64Number(msg, OFF_SEND_TS, Math.floor(nowUs()));
    this.mac(peer.key, msg, body).copy(msg, body, 0, MAC_LEN);
    this.replied++;
    this.socket.send(msg, rinfo.port, rinfo.address);
  };

  /** Counters so far. */
  counts(): BaselineCounts {
    return { received: this.received, replied: this.replied, dropped: { ...this.dropped } };
  }

  /** Close the socket. */
  close(): Promise<BaselineCounts> {
    return new Promise((r) => this.socket.close(() => r(this.counts())));
  }
}
