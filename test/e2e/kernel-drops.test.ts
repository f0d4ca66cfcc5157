/**
 * Loss outside the process (src/observe/kernel-drops.ts): the `drops` column of /proc/net/udp{,6} for
 * a socket, and the net.core.rmem_max note. Real sockets on 127.0.0.1 / ::1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import { test } from 'node:test';
import { parseProcNetUdp, readKernelDrops, readProcNetUdp, readRmemMax, recvBufferNote } from '../../src/observe/kernel-drops.js';
import { Engine } from '../../src/engine.js';

const linux = process.platform === 'linux';

async function bound(type: 'udp4' | 'udp6', host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => resolve());
  });
  return s;
}

/**
 * A receiver in a child process that binds 127.0.0.1:0 with a 4 KiB receive buffer,
 * prints its port, then blocks its only thread on stdin (so never reads a datagram)
 * until the parent closes stdin, or 20 s pass.
 */
const STALLED_RECEIVER = `
const dgram = require('node:dgram');
const fs = require('node:fs');
const s = dgram.createSocket('udp4');
s.bind(0, '127.0.0.1', () => {
  s.setRecvBufferSize(4096);
  process.stdout.write(s.address().port + ' ' + s.getRecvBufferSize() + '\\n');
  // block this thread (no datagram is ever read) until stdin closes or 20 s pass
  const end = Date.now() + 20000;
  const one = Buffer.alloc(1);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < end) {
    try {
      if (fs.readSync(0, one) === 0) break;
    } catch (e) {
      if (e.code !== 'EAGAIN') break;
      Atomics.wait(pause, 0, 0, 10);
    }
  }
  process.exit(0);
});
`;

test('a stalled socket with a 4 KiB buffer flooded by 20,000 datagrams: readKernelDrops reports the kernel drops for its port', { skip: !linux && 'Linux only' }, async () => {
  const child = spawn(process.execPath, ['-e', STALLED_RECEIVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const sender = await bound('udp4', '127.0.0.1');
  try {
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const deadline = Date.now() + 10_000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const [port, rcvbuf] = out.trim().split(' ').map(Number);
    assert.ok(port! > 0, `child reported its port (${out})`);
    assert.ok(rcvbuf! <= 16384, `tiny receive buffer (${rcvbuf})`);
    assert.equal(readKernelDrops(port!, 4, '127.0.0.1'), 0, 'nothing dropped before the flood');
    const N = 20_000;
    const msg = Buffer.alloc(64, 0x5a);
    let done = 0;
    await new Promise<void>((resolve) => {
      for (let i = 0; i < N; i++) {
        sender.send(msg, port!, '127.0.0.1', () => {
          if (++done === N) resolve();
        });
      }
      setTimeout(resolve, 10_000).unref(); // bounded even if a callback never came
    });
    const drops = readKernelDrops(port!, 'IPv4');
    assert.ok(drops !== null && drops > 0, `kernel drops reported (${drops})`);
    assert.ok(drops! <= N, `no more drops than datagrams (${drops} of ${N})`);
    assert.equal(readKernelDrops(port!, 'udp4', '127.0.0.1'), drops, 'the same socket when the address is given');
    assert.equal(readKernelDrops(port!, 4, '127.0.0.2'), null, 'another local address: no such socket');
    const row = readProcNetUdp(4)!.find((r) => r.localPort === port);
    assert.ok(row !== undefined && row.rxQueue > 0, 'the datagrams that fit wait unread in the queue');
  } finally {
    sender.close();
    child.stdin!.end(); // unblocks the child, which exits
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
});

test('a quiet socket reports 0 drops (IPv4 and IPv6); a port with no socket, or a bad port, reports null', { skip: !linux && 'Linux only' }, async () => {
  const s4 = await bound('udp4', '127.0.0.1');
  let s6: dgram.Socket | null = null;
  try {
    s6 = await bound('udp6', '::1');
  } catch {
    // no IPv6 loopback on this machine
  }
  try {
    const p4 = s4.address().port;
    assert.equal(readKernelDrops(p4, s4.address().family as 'IPv4'), 0);
    assert.equal(readKernelDrops(p4, 4, '127.0.0.1'), 0);
    const row = readProcNetUdp(4)!.find((r) => r.localPort === p4)!;
    assert.deepEqual([...row.localAddress], [127, 0, 0, 1], 'address decoded from host byte order');
    assert.equal(readKernelDrops(p4, 6), null, 'not an IPv6 socket');
    if (s6 !== null) {
      const p6 = s6.address().port;
      assert.equal(readKernelDrops(p6, 'IPv6'), 0);
      assert.equal(readKernelDrops(p6, 6, '::1'), 0);
      assert.equal(readKernelDrops(p6, 6, '0:0:0:0:0:0:0:1'), 0, 'any spelling of the address');
      assert.equal(readKernelDrops(p6, 6, '::2'), null);
    }
    for (const bad of [0, -1, 65536, 1.5, Number.NaN]) assert.equal(readKernelDrops(bad, 4), null, String(bad));
    assert.equal(readKernelDrops(p4, 5 as 4), null, 'unknown family');
    assert.equal(readKernelDrops(p4, 4, 'not-an-address'), null);
  } finally {
    s4.close();
    s6?.close();
  }
});

test('parseProcNetUdp reads the drops column and skips rows of another shape', () => {
  const le = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  const lo = le ? '0100007F' : '7F000001';
  const text =
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n' +
    ` 1234: ${lo}:1F90 00000000:0000 07 00000000:00000A00 00:00000000 00000000  1000        0 12345 2 0000000000000000 17\n` +
    ' garbage line\n' +
    ` 1235: ${lo}:1F91 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 12346 2 0000000000000000 0\n`;
  const rows = parseProcNetUdp(text, 4);
  assert.equal(rows.length, 2);
  assert.deepEqual(
    rows.map((r) => [[...r.localAddress].join('.'), r.localPort, r.rxQueue, r.inode, r.drops]),
    [
      ['127.0.0.1', 8080, 0xa00, 12345, 17],
      ['127.0.0.1', 8081, 0, 12346, 0],
    ],
  );
});

test('rmem_max is readable on Linux; the receive-buffer note is one line naming the sysctl only when capped', () => {
  const rmem = readRmemMax();
  if (linux) assert.ok(rmem !== null && rmem > 0, `rmem_max ${rmem}`);
  assert.equal(recvBufferNote(1 << 20, 2 << 20, 4 << 20), null, 'granted in full');
  const note = recvBufferNote(8 << 20, 425984, 212992)!;
  assert.match(note, /net\.core\.rmem_max = 212992/);
  assert.match(note, /sysctl -w net\.core\.rmem_max=8388608/);
  assert.equal(note.split('\n').length, 1);
  assert.equal(recvBufferNote(1000, 2000, null), null, 'unknown cap: compares granted with requested');
  assert.match(recvBufferNote(8000, 2000, null)!, /below the 8000 asked for/);
});

test('the dgram lane\'s receive-buffer note names what the kernel granted, not the doubled SO_RCVBUF it reports', { skip: !linux && 'rmem_max and the doubling are Linux' }, async (t) => {
  const rmem = readRmemMax()!;
  if (2 * rmem + 4096 > 1 << 30) return t.skip(`net.core.rmem_max is ${rmem}: a request above it is past the engine's 1 GiB recvBufferBytes limit`);
  const engine = await Engine.create({ rootKey: new Uint8Array(32).fill(7), tenant: 'rcvbuf', agent: 'a', peers: ['b'], workers: 1, lane: 'dgram', recvBufferBytes: 2 * rmem + 4096 });
  try {
    // Node sets SO_RCVBUF (not the FORCE variant, even as root): the kernel grants rmem_max and reports twice that
    assert.match(engine.recvBufferNote ?? '', new RegExp(`got ${rmem}\\)`), String(engine.recvBufferNote));
  } finally {
    await engine.close();
  }
});
