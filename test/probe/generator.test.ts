/**
 * The generator's own health (MEASUREMENT.md §2, src/probe/generator.ts): event-loop delay
 * is the delay, not the sampling period, and a blocked loop shows in it; lateness and
 * `generator_limited` follow the schedule; the CPU figures (the prober's own, the host's
 * hypervisor steal) cover the measured phase up to the end of sending.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type HostCpuTimes, hostCpuTimes, parseProcStat } from '../../src/observe/host-cpu.js';
import { ELD_RESOLUTION_MS, Generator, LATENESS_BOUND_US, REPLY_SPIN_HORIZON_US, spinForReply } from '../../src/probe/generator.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('event-loop delay: an idle loop reports well under the sampling period; a loop blocked 40 ms at a time reports ≥ 25 ms', async () => {
  const idle = new Generator(1000, 'timer');
  idle.begin();
  await sleep(12 * ELD_RESOLUTION_MS);
  idle.stop();
  const i = idle.health(1000).event_loop_delay_us;
  // Node records whole sampling intervals (≈ 10 ms each on an idle loop): the report subtracts the period
  assert.ok(i.p50 < 2500, `idle p50 ${i.p50} µs is not the ${ELD_RESOLUTION_MS} ms sampling period`);

  const busy = new Generator(1000, 'timer');
  busy.begin();
  for (let k = 0; k < 4; k++) {
    const end = performance.now() + 40;
    while (performance.now() < end) {
      /* block the loop */
    }
    await sleep(ELD_RESOLUTION_MS * 2);
  }
  busy.stop();
  const b = busy.health(1000).event_loop_delay_us;
  assert.ok(b.max >= 25_000, `blocked loop: max ${b.max} µs`);
});

test('lateness: probes sent on time are not generator-limited; lateness p99 above the bound or offered < 98 % is', () => {
  const ok = new Generator(1000, 'yield');
  ok.begin();
  for (let k = 0; k < 1000; k++) ok.sent(30);
  ok.stop();
  const h = ok.health(1000);
  assert.equal(h.generator_limited, false);
  assert.ok(h.lateness_us.p99 >= 29 && h.lateness_us.p99 <= 31, JSON.stringify(h.lateness_us));

  const late = new Generator(1000, 'yield');
  late.begin();
  for (let k = 0; k < 1000; k++) late.sent(k < 980 ? 10 : LATENESS_BOUND_US * 3);
  late.stop();
  assert.equal(late.health(1000).generator_limited, true, 'p99 above the bound');

  const slow = new Generator(1000, 'yield');
  slow.begin();
  slow.stop();
  assert.equal(slow.health(970).generator_limited, true, 'offered 97 % of the requested rate');
  assert.equal(slow.health(990).generator_limited, false, 'offered 99 %');
});

test('cpu_cores: the process CPU over the measured phase up to the end of sending — a busy sender shows near a core, an idle one near none, the wait after sending is left out', async () => {
  // how much of the busy loop's wall time the host gave this process depends on its load: the
  // figure is held to the process's own count over the same span
  const busy = new Generator(1000, 'yield');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  busy.begin();
  const end = performance.now() + 200;
  while (performance.now() < end) {
    /* a sender with no sleep in it */
  }
  busy.sendingDone();
  const cpu = process.cpuUsage(cpu0);
  const own = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
  await sleep(400); // waiting for the last replies: idle, not in the figure (counted, it would pull the figure to a third of it)
  busy.stop();
  const b = busy.health(1000).cpu_cores;
  assert.ok(own > 0.2, `the loop ran (${own} cores)`);
  assert.ok(Math.abs(b - own) <= 0.15 * own + 0.05, `busy: ${b} cores, ${own.toFixed(3)} by process.cpuUsage over the sending span`);

  const idle = new Generator(1000, 'yield');
  idle.begin();
  await sleep(200);
  idle.sendingDone();
  idle.stop();
  const i = idle.health(1000).cpu_cores;
  assert.ok(i >= 0 && i < 0.3, `idle: ${i} cores`);
  const never = new Generator(1000, 'yield');
  never.stop();
  assert.equal(never.health(1000).cpu_cores, 0, 'never begun: 0');
});

test('host_steal_cores: the host\'s hypervisor steal over the measured phase, in cores — from the ticks /proc/stat adds between begin and the end of sending; null where the host does not count it', async () => {
  // a host whose steal counter moves 30 ticks (0.3 s at USER_HZ 100) while 0.2 s pass: 1.5 cores stolen
  let steal = 1000;
  const fake = (): HostCpuTimes => ({ busy: 0, steal, total: 0 });
  const g = new Generator(1000, 'yield', fake);
  g.begin();
  await sleep(200);
  steal += 30;
  g.sendingDone();
  steal += 500; // after sending: not in the figure
  g.stop();
  const s = g.health(1000).host_steal_cores;
  assert.ok(s !== null && s >= 1.2 && s <= 1.55, `steal ${s} cores (30 ticks over ≈ 0.2 s)`);

  const none = new Generator(1000, 'yield', () => null);
  none.begin();
  none.sendingDone();
  none.stop();
  assert.equal(none.health(1000).host_steal_cores, null, 'no /proc/stat: null, never 0');

  // this host: a figure where Linux counts steal, never negative
  const real = new Generator(1000, 'yield');
  real.begin();
  await sleep(50);
  real.sendingDone();
  real.stop();
  const r = real.health(1000).host_steal_cores;
  if (process.platform === 'linux') assert.ok(r !== null && r >= 0, `linux: ${r}`);
  else assert.equal(r, null);
});

test('parseProcStat: the aggregate cpu line of proc(5) — busy is user+nice+system+irq+softirq, steal the 8th column, total adds idle and iowait; anything else is null', () => {
  const text = 'cpu  4705 150 1120 16250 520 30 45 62 0 0\ncpu0 2352 75 560 8125 260 15 22 31 0 0\nintr 1\n';
  assert.deepEqual(parseProcStat(text), { busy: 4705 + 150 + 1120 + 30 + 45, steal: 62, total: 4705 + 150 + 1120 + 30 + 45 + 16250 + 520 + 62 });
  assert.deepEqual(parseProcStat('cpu  10 0 5 100\n'), { busy: 15, steal: 0, total: 115 }, 'an old kernel without the steal column: 0');
  assert.equal(parseProcStat('cpu0 1 2 3 4 5 6 7 8\n'), null, 'not the aggregate line');
  assert.equal(parseProcStat('cpu  1 2 x 4\n'), null, 'not numbers');
  assert.equal(parseProcStat(''), null);
  const live = hostCpuTimes();
  if (process.platform === 'linux') assert.ok(live !== null && live.total >= live.busy + live.steal && live.total > 0, JSON.stringify(live));
});

test('spinForReply: yield pacing on a JS-stamped lane waits for a reply due within the horizon by going round the loop, and sleeps for one far off, overdue, already in, before any RTT is known, or when replies stopped coming', () => {
  const H = REPLY_SPIN_HORIZON_US;
  const I = 100; // 10 k pps
  // loopback at 10 k pps: the reply of the probe just sent comes in ~30 µs, before the next send;
  // the last reply (the previous probe's) came 100 - 30 µs before this send
  const R = (sinceSend: number): number => sinceSend + I - 30;
  assert.equal(spinForReply(5, true, 30, R(5), I), true);
  assert.equal(spinForReply(0, true, H, 0, I), true, 'due exactly at the horizon');
  // already answered: nothing to wait for
  assert.equal(spinForReply(5, false, 30, 0, I), false);
  // no RTT seen yet (the first probes): sleep as before
  assert.equal(spinForReply(5, true, 0, Infinity, I), false);
  // a long path: the reply is 50 ms off when its probe leaves
  assert.equal(spinForReply(100, true, 50_000, 100, I), false);
  assert.equal(spinForReply(50_000 - H - 1, true, 50_000, 100, I), false, 'one µs beyond the horizon');
  // … and within the horizon once its time comes
  assert.equal(spinForReply(50_000 - H, true, 50_000, 100, I), true);
  // overdue (2 × RTT + the horizon): lost or slow, the prober sleeps again
  assert.equal(spinForReply(2 * 30 + H, true, 30, R(2 * 30 + H), I), true);
  assert.equal(spinForReply(2 * 30 + H + 1, true, 30, R(2 * 30 + H + 1), I), false);
  // a peer gone silent: each probe leaves before the last is overdue (100 < 260 µs), but no
  // reply came for longer than an interval, 2 × RTT and the horizon after the last send
  assert.equal(spinForReply(5, true, 30, 5 + 2 * I - 30, I), true, 'one reply lost: still spinning');
  assert.equal(spinForReply(5, true, 30, 5 + I + 2 * 30 + H, I), true, 'the last reply at the bound');
  assert.equal(spinForReply(5, true, 30, 5 + I + 2 * 30 + H + 1, I), false, 'replies stopped: sleep');
  assert.equal(spinForReply(5, true, 30, Infinity, I), false, 'no reply ever');
});

test('lateness percentiles never pass its exact max (HDR percentiles are bucket tops): one send 8000 µs late is p50 = p99 = max = 8000', () => {
  const g = new Generator(1000, 'yield');
  g.begin();
  g.sent(8000);
  g.stop();
  assert.deepEqual(g.health(1000).lateness_us, { p50: 8000, p99: 8000, max: 8000 });
});
