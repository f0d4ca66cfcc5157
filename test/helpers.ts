/** Shared test helpers: vector loading, hex, and a one-datagram receiver built from the engine's own stages. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Lane, LaneSink } from '../src/pipeline/lane.js';
import { BatchRing } from '../src/pipeline/ring.js';
import { collectBatch, type CollectSink } from '../src/pipeline/collect.js';
import { KeyRing } from '../src/keys/keyring.js';
import { KeyTable } from '../src/keys/keytable.js';
import { H_COUNT, H_KEY_HALF, H_NONCE_HI, H_NONCE_LO, M_LENGTH, M_VERDICT } from '../src/pipeline/layout.js';
import { encodePacket } from '../src/protocol/codec.js';
import { macRoute } from '../src/protocol/mac.js';
import { nativeMac } from '../src/protocol/native.js';
import { senderIdOf } from '../src/protocol/ids.js';
import { derivePairKey } from '../src/protocol/keys.js';
import { ReplayFilter } from '../src/protocol/replay.js';
import { HMAC_STATE_WORDS, hmacPrecompute } from '../src/protocol/sha256.js';
import { Books } from '../src/observe/stats.js';
import { verdictName, type VerdictName } from '../src/protocol/verdict.js';
import { BatchVerifier } from '../src/pipeline/verify.js';

/** The repository root (tests run from dist/test/…). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The project's verbatim copy of the shared vectors. */
export const vectorsDir = `${repoRoot}test/vectors/`;

/** Parse a vector file of test/vectors/. */
export function loadVectors<T = any>(name: string): T {
  return JSON.parse(fs.readFileSync(`${vectorsDir}${name}`, 'utf8')) as T;
}

/** Hex → bytes. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Bytes → hex. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** A receiver description, as in verdicts.json. */
export interface ReceiverSpec {
  root: Uint8Array;
  prevRoot?: Uint8Array | null;
  tenant: string;
  me: string;
  peers: string[];
  startUs: number;
  replayWindow: number;
  maxDatagram: number;
  clockWindowUs?: number;
}

/**
 * The engine's receive path without sockets or threads: BatchRing → BatchVerifier (the
 * worker's code, on this thread) → collectBatch (replay check, books). One datagram per
 * batch so every call sees the state the previous one left.
 */
export class TestReceiver {
  readonly keyring: KeyRing;
  readonly keyTable = new KeyTable(64);
  readonly filter: ReplayFilter;
  readonly ring: BatchRing;
  readonly books = new Books();
  readonly verifier: BatchVerifier;
  /** Slots of accepted PROBEs with their reply bytes; accepted other types. */
  readonly replies: Uint8Array[] = [];
  readonly delivered: number[] = [];
  private nonce = 1;

  constructor(spec: ReceiverSpec, slots = 1) {
    this.keyring = new KeyRing(spec.tenant, spec.me, spec.prevRoot ?? spec.root, spec.peers);
    if (spec.prevRoot) this.keyring.rotate(spec.root);
    this.keyTable.publish(this.keyring.entries());
    this.filter = new ReplayFilter(spec.replayWindow, this.keyring.peerSlots);
    this.ring = new BatchRing(2, slots, spec.maxDatagram);
    this.verifier = new BatchVerifier({
      batchSab: this.ring.sab,
      batches: 2,
      slots,
      maxDatagram: spec.maxDatagram,
      keySab: this.keyTable.sab,
      keyCapacity: this.keyTable.capacity,
      selfId: this.keyring.selfId,
      clockWindowUs: spec.clockWindowUs ?? 5_000_000,
      startUs: spec.startUs,
    });
  }

  /** Judge a batch of datagrams received at `nowUs`; returns their verdict names in order. */
  judgeAll(datagrams: Uint8Array[], nowUs: number, replyTsUs = nowUs): VerdictName[] {
    const ring = this.ring;
    const b = ring.take();
    for (const d of datagrams) ring.put(b, d, nowUs, '127.0.0.1', 9);
    const h = ring.layout.headerIndex(b);
    ring.ints[h + H_COUNT] = datagrams.length;
    ring.ints[h + H_KEY_HALF] = this.keyTable.pin();
    ring.ints[h + H_NONCE_HI] = 0;
    ring.ints[h + H_NONCE_LO] = this.nonce;
    this.nonce += datagrams.length;
    ring.dispatched(b);
    this.verifier.run(b, replyTsUs);
    ring.popHead();
    const out: VerdictName[] = [];
    const sink: CollectSink = {
      reply: (s) => this.replies.push(ring.bytes.slice(ring.layout.replyOffset(s), ring.layout.replyOffset(s) + ring.ints[ring.layout.metaIndex(s) + M_LENGTH]!)),
      deliver: (_s, type) => this.delivered.push(type),
    };
    collectBatch(ring, b, this.filter, this.books, sink, nowUs);
    for (let i = 0; i < datagrams.length; i++) {
      out.push(verdictName(ring.ints[ring.layout.metaIndex(ring.layout.slotNumber(b, i)) + M_VERDICT]!));
    }
    this.keyTable.unpin(ring.ints[h + H_KEY_HALF]!);
    ring.release(b);
    return out;
  }

  /** Judge one datagram received at `nowUs`. */
  judge(datagram: Uint8Array, nowUs: number): VerdictName {
    return this.judgeAll([datagram], nowUs)[0]!;
  }
}

/** µs since the Unix epoch, as the engine's clock reads it. */
export function wallUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * An independent test peer on 127.0.0.1: crafts datagrams with the protocol codec
 * (valid or deliberately broken) and records everything sent back to it.
 */
export class TestPeer {
  readonly socket: dgram.Socket;
  readonly received: Buffer[] = [];
  readonly senderId: Uint8Array;
  private readonly state = new Int32Array(HMAC_STATE_WORDS);
  private waiters: Array<() => void> = [];
  nonce: bigint;

  private constructor(socket: dgram.Socket, readonly agent: string, pairKey: Uint8Array) {
    this.socket = socket;
    this.senderId = senderIdOf(agent);
    hmacPrecompute(pairKey, this.state, 0);
    this.nonce = BigInt(wallUs()) * 1000n;
    socket.on('message', (m) => {
      this.received.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** A peer `agent` holding the pair key it shares with `with_` under `root`. */
  static async open(root: Uint8Array, tenant: string, agent: string, with_: string): Promise<TestPeer> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    s.setRecvBufferSize(4 << 20);
    return new TestPeer(s, agent, derivePairKey(root, tenant, agent, with_));
  }

  /** A valid v1 datagram (next nonce unless given), `size` bytes in all. */
  packet(o: { type?: number; probeId?: number; size?: number; nonce?: bigint; sendTsUs?: number; ver?: number; senderId?: Uint8Array; payload?: Uint8Array } = {}): Uint8Array {
    const size = o.size ?? 84;
    const nonce = o.nonce ?? ++this.nonce;
    return encodePacket(
      {
        type: o.type ?? 1,
        ver: o.ver,
        senderId: o.senderId ?? this.senderId,
        nonce,
        probeId: o.probeId ?? 0,
        sendTsUs: BigInt(o.sendTsUs ?? wallUs()),
        payload: o.payload ?? new Uint8Array(size - 50).fill(0x5a),
      },
      this.state,
    );
  }

  /** Send raw bytes to `port` on 127.0.0.1. */
  send(d: Uint8Array, port: number): Promise<void> {
    return new Promise((r) => this.socket.send(d, port, '127.0.0.1', () => r()));
  }

  /** Wait until `n` datagrams arrived or `ms` passed; returns how many arrived. */
  async waitFor(n: number, ms: number): Promise<number> {
    const end = Date.now() + ms;
    while (this.received.length < n && Date.now() < end) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, end - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.received.length;
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * Send `n` probes from `peer` to `port`, at most `window` outstanding; resolves once all
 * are answered or 20 s passed (the caller checks how many were). Many peers × a large
 * window can exceed an engine's batch ring and be shed as `overload` (counted, never
 * answered): keep peers × window under `batches × batchSize` where every probe must be answered.
 */
export async function probeRun(peer: TestPeer, port: number, n: number, window = 256): Promise<void> {
  const deadline = Date.now() + 30_000;
  const base = peer.received.length;
  for (let i = 0; i < n && Date.now() < deadline; i++) {
    while (i - (peer.received.length - base) >= window && Date.now() < deadline) await peer.waitFor(base + i - window + 1, 1000);
    await peer.send(peer.packet({ probeId: i }), port);
  }
  await peer.waitFor(base + n, 20_000);
}

/**
 * `promise`, or a rejection naming `what` once `ms` have passed: every wait in the tests
 * is bounded, so a wedged engine fails the test with a reason instead of hanging the run.
 */
export function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Poll `cond` every 10 ms until it holds; throws naming `what` after `ms`. */
export async function until(ms: number, cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The MAC route this process runs on, checked against `DTMESH_NATIVE`: with `0` it must be
 * the JS kernel + node:crypto route, otherwise the native kernel wherever it was built.
 * Test files that must run on both kernels register a test named after the route, which
 * test/protocol/native.test.ts looks for in its `DTMESH_NATIVE=0` child run.
 */
export function assertMacRoute(): string {
  const route = macRoute();
  if (process.env.DTMESH_NATIVE === '0') {
    assert.equal(nativeMac, null, 'DTMESH_NATIVE=0 turns the native kernel off');
    assert.match(route, /^MAC route: JS kernel below \d+ canonical bytes, node:crypto above/);
  } else if (nativeMac !== null) {
    assert.match(route, /^MAC route: native kernel/);
  }
  return route;
}

/** The built CLI. */
export const cliPath = `${repoRoot}dist/cli.js`;

/** A running `dtmesh serve` child. */
export interface Served {
  child: ChildProcess;
  /** The UDP port it listens on. */
  port: number;
  /** Everything it wrote so far. */
  out(): string;
  err(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Send `signal` and wait (bounded) for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start `dtmesh serve args` and wait (≤ 15 s) until it says where it listens. */
export async function startServe(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const child = spawn(process.execPath, [cliPath, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const re = /listening on (?:\[[^\]]+\]|[\d.]+):(\d+)/;
  try {
    await until(15_000, () => re.test(out) || child.exitCode !== null, `serve ${args.join(' ')} to listen`);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  if (!re.test(out)) throw new Error(`serve exited before listening: ${err}`);
  const port = Number(re.exec(out)![1]);
  return {
    child,
    port,
    out: () => out,
    err: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      child.kill(signal);
      try {
        return await within(20_000, exited, `serve to exit after ${signal}`);
      } finally {
        child.kill('SIGKILL');
      }
    },
  };
}

/** Every directory `tempDir` made in this process, removed when the process exits. */
const tempDirs: string[] = [];

/**
 * A fresh empty directory `os.tmpdir()/<prefix>XXXXXX`, removed with all it holds when this
 * process exits (children spawned on it may use it until then). Every test makes its
 * directories here so that a test run leaves nothing in /tmp: before, each `npm test` left
 * dozens behind, many holding a mesh root key. The removal runs in one `exit` handler,
 * registered on the first call; a test killed by a signal skips it.
 */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (tempDirs.length === 0) {
    process.on('exit', () => {
      for (const d of tempDirs) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {
          // best effort: an exit handler must not throw
        }
      }
    });
  }
  tempDirs.push(dir);
  return dir;
}

/**
 * Runs `start` (which creates an engine on test/fixtures/hang-worker.ts) with a fresh
 * `DTMESH_HANG_RELEASE` file in the environment — piscina workers inherit it when they
 * start — and removes it from the environment again, whether `start` succeeded or not.
 * `release()` creates the file: every held batch then goes on (call it in `finally`).
 */
export async function withHangRelease<T>(start: () => Promise<T>): Promise<{ started: T; release: () => void }> {
  const file = path.join(tempDir('dtmesh-hang-'), 'release');
  process.env.DTMESH_HANG_RELEASE = file;
  try {
    return { started: await start(), release: () => fs.writeFileSync(file, '') };
  } finally {
    delete process.env.DTMESH_HANG_RELEASE;
  }
}

/** A fresh state directory holding a root key (`dtmesh keys init`), removed at exit (`tempDir`); `copyFrom` copies another's key instead. */
export function stateDir(copyFrom?: string): string {
  const dir = tempDir('dtmesh-e2e-');
  if (copyFrom !== undefined) {
    fs.copyFileSync(path.join(copyFrom, 'mesh-root-key'), path.join(dir, 'mesh-root-key'));
    fs.chmodSync(path.join(dir, 'mesh-root-key'), 0o600);
    return dir;
  }
  const r = spawnSync(process.execPath, [cliPath, 'keys', 'init', '--state-dir', dir], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return dir;
}

/** `promtool check metrics` on `text`: null when clean, its complaint otherwise; undefined when promtool is not installed. */
export function promtoolCheck(text: string): string | null | undefined {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined) return undefined;
  return r.status === 0 ? null : `${r.stdout}${r.stderr}`.trim();
}

/**
 * A lane's sink (src/pipeline/lane.ts `LaneSink`) that records what the lane hands on:
 * the lane tests drive a lane of either kind on its own with it. A lane that reports
 * `failed` fails the test.
 */
export class RecordingSink implements LaneSink {
  /** `[batch, count]` of every batch handed on. */
  readonly batches: Array<[number, number]> = [];
  sentCount = 0;
  drainedCount = 0;
  /** What `takePartial` answers. */
  partial = false;
  filled(_lane: Lane, b: number, count: number): void {
    this.batches.push([b, count]);
  }
  takePartial(): boolean {
    return this.partial;
  }
  sent(): void {
    this.sentCount++;
  }
  drained(): void {
    this.drainedCount++;
  }
  failed(_lane: Lane, why: string): void {
    assert.fail(`a lane failed: ${why}`);
  }
}
