/**
 * Accepted PUNCH_HINTs (PROTOCOL.md §2, §4 "Accepted PUNCH_HINT → burst, subject to the
 * limits in §2"), on the engine's thread. The collector hands each accepted hint here
 * while it judges the batch ({@link judge}: the policy decides in arrival order, in place,
 * allocating nothing on the refusal path a flood exercises); the bursts of granted hints
 * leave once the batch's own REPLYs are in the send order ({@link run}), so the REPLYs'
 * smaller nonces reach the wire first. A hint this socket cannot serve (other address
 * family) is refused before any token is charged, and a grant whose burst could not be
 * sent at all gives its tokens back: tokens pay only for bursts that leave.
 */
import type { KeyRing } from '../keys/keyring.js';
import type { KeyTable } from '../keys/keytable.js';
import { KE_PEER } from '../keys/table-layout.js';
import { readU32 } from '../protocol/codec.js';
import { findKeyEntry } from '../protocol/receive.js';
import { formatHintAddress, type PunchPolicy, punchRefusalName } from '../protocol/punch.js';
import { HINT_OFF_ADDR, HINT_OFF_FAMILY, HINT_OFF_PORT, HINT_OFF_TARGET, MIN_DATAGRAM, OFF_PAYLOAD, TYPE_PROBE } from '../protocol/wire.js';
import { M_PEER } from './layout.js';
import type { ReplySender } from './reply.js';
import type { BatchRing } from './ring.js';

/** probe_ids of punch-burst PROBEs: the top 256 values (the prober never uses them). */
export const PUNCH_PROBE_ID_BASE = 0xffffff00;

/** An accepted PUNCH_HINT (PROTOCOL.md §2), as the `'punch_hint'` event tells it. */
export interface PunchHintEvent {
  /** Agent ID of the sender. */
  from: string;
  /** Target sender_id, hex. */
  target: string;
  /** 4 or 6. */
  family: number;
  /** Address to probe. */
  address: string;
  /** Port to probe. */
  port: number;
  /** What the engine did: `'sent'` (a burst of PROBEs) or the reason it did not. */
  decision: string;
}

/** Punch-hint bookkeeping (see {@link PunchPolicy}). */
export interface PunchStats {
  granted: number;
  probes: number;
  refused: Record<string, number>;
}

/** A granted hint whose burst waits for the end of its batch. */
interface Grant {
  agent: string;
  host: string;
  port: number;
  probes: number;
  targetHi: number;
  targetLo: number;
  event: PunchHintEvent | null;
}

/** The hint handler; see the file header. */
export class HintHandler {
  private readonly grants: Grant[] = [];

  constructor(
    private readonly ring: BatchRing,
    private readonly keyTable: KeyTable,
    private readonly keyring: KeyRing,
    private readonly policy: PunchPolicy | null,
    private readonly replies: ReplySender,
    /** True when this engine's socket is IPv6. */
    private readonly ipv6: boolean,
    /** Whether anyone listens for `'punch_hint'` (events are only built then). */
    private readonly listening: () => boolean,
    private readonly emit: (event: PunchHintEvent) => void,
  ) {}

  /** The accepted PUNCH_HINT in slot `s`: decide now (in order); a granted burst waits for {@link run}. */
  judge(s: number, nowMs: number): void {
    const { layout, bytes, ints } = this.ring;
    const off = layout.datagramOffset(s) + OFF_PAYLOAD;
    const kt = this.keyTable;
    const targetHi = readU32(bytes, off + HINT_OFF_TARGET) | 0;
    const targetLo = readU32(bytes, off + HINT_OFF_TARGET + 4) | 0;
    const k = findKeyEntry(kt.own, kt.capacity, 0, targetHi, targetLo); // the newest roster, as the burst's sends use
    const family = bytes[off + HINT_OFF_FAMILY]!;
    const port = (bytes[off + HINT_OFF_PORT]! << 8) | bytes[off + HINT_OFF_PORT + 1]!;
    let n = 0;
    let decision: string;
    if (this.policy === null) decision = 'ignored';
    else if ((family === 6) !== this.ipv6) decision = 'wrong_family'; // this socket cannot reach that family: refused before any token is charged
    else {
      n = this.policy.judgeHint(bytes, off, k >= 0, nowMs);
      decision = n < 0 ? punchRefusalName(n) : 'sent';
    }
    const event: PunchHintEvent | null = this.listening()
      ? {
          from: this.keyring.agentOf(ints[layout.metaIndex(s) + M_PEER]!) ?? '',
          target: bytes.subarray(off + HINT_OFF_TARGET, off + HINT_OFF_TARGET + 8).toString('hex'),
          family,
          address: formatHintAddress(family, bytes, off + HINT_OFF_ADDR),
          port,
          decision,
        }
      : null;
    if (n > 0) {
      const agent = this.keyring.agentOf(kt.own[k + KE_PEER]!)!;
      this.grants.push({ agent, host: formatHintAddress(family, bytes, off + HINT_OFF_ADDR), port, probes: n, targetHi, targetLo, event });
    } else if (event !== null) this.emit(event);
  }

  /** Send the bursts granted in the batch just collected (its REPLYs are already in the send order). */
  run(): void {
    for (let g = this.grants.shift(); g !== undefined; g = this.grants.shift()) {
      let sent = 0;
      for (let i = 0; i < g.probes; i++) if (this.trySend(g, PUNCH_PROBE_ID_BASE + i)) sent++;
      if (sent === 0) {
        this.policy!.refund(g.targetHi, g.targetLo); // nothing left: the tokens are given back
        if (g.event !== null) g.event.decision = 'send_failed';
      }
      if (g.event !== null) this.emit(g.event);
    }
  }

  private trySend(g: Grant, probeId: number): boolean {
    try {
      return this.replies.send(TYPE_PROBE, g.agent, g.host, g.port, probeId, MIN_DATAGRAM);
    } catch {
      return false; // the target left the roster since: nothing sent
    }
  }

  /** Decisions so far. */
  stats(): PunchStats {
    const p = this.policy;
    return p === null ? { granted: 0, probes: 0, refused: {} } : { granted: p.granted, probes: p.probesGranted, refused: { ...p.refused } };
  }
}
