/**
 * This host's CPU time from `/proc/stat` (proc(5)): busy, hypervisor steal and total, in
 * USER_HZ ticks, summed over every CPU. Steal is time a virtual CPU was ready to run but
 * the hypervisor ran something else: on a shared VM it comes in stalls of milliseconds
 * (the kernel counts only part of what a vCPU loses), and every prober's and responder's
 * tail on that host carries them. The prober reports it beside its own CPU
 * (MEASUREMENT.md §2: a slow host is neither a slow prober nor a slow path).
 */
import * as fs from 'node:fs';

/** Ticks per second of `/proc/stat` (USER_HZ: 100 on every Linux architecture Node runs on). */
export const USER_HZ = 100;

/** Aggregate CPU times of the host, USER_HZ ticks since boot. */
export interface HostCpuTimes {
  /** user + nice + system + irq + softirq. */
  busy: number;
  /** Time stolen by the hypervisor (0 on bare metal). */
  steal: number;
  /** busy + idle + iowait + steal. */
  total: number;
}

/** The first (`cpu `) line of a `/proc/stat` text, or null when it is not there or not numbers. */
export function parseProcStat(text: string): HostCpuTimes | null {
  const line = text.slice(0, text.indexOf('\n') < 0 ? text.length : text.indexOf('\n'));
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'cpu' || fields.length < 5) return null;
  const n = fields.slice(1).map(Number);
  if (n.some((x) => !Number.isFinite(x) || x < 0)) return null;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = n;
  const busy = user + nice + system + irq + softirq;
  return { busy, steal, total: busy + idle + iowait + steal };
}

/** Steal between two readings `seconds` apart, in cores (0 or more). */
export function stealCores(from: HostCpuTimes, to: HostCpuTimes, seconds: number): number {
  return seconds > 0 ? Math.max(0, to.steal - from.steal) / USER_HZ / seconds : 0;
}

/** This host's CPU times now, or null where there is no readable `/proc/stat` (not Linux). */
export function hostCpuTimes(): HostCpuTimes | null {
  try {
    return parseProcStat(fs.readFileSync('/proc/stat', 'utf8'));
  } catch {
    return null;
  }
}
