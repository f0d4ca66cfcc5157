/**
 * Loss outside the process: datagrams the kernel dropped before `dgram` could read them
 * (receive buffer overflow), and the `net.core.rmem_max` cap on the receive buffer.
 *
 * The engine's books (ENGINE.md "Nothing is lost silently", PROTOCOL.md §4 "It is
 * counted") cover every datagram the socket thread takes; these readings cover the ones
 * it never saw. Linux only: `/proc/net/udp` and `/proc/net/udp6` carry a per-socket
 * `drops` column (the socket's `sk_drops`), `/proc/sys/net/core/rmem_max` the cap. Every
 * function returns `null` where that is unsupported or unreadable — never throws.
 *
 * Not hot-path code: read at stats/shutdown time, it reads a file and allocates.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/** Address family as `dgram` reports it (`'IPv4'`/`'IPv6'`) or as a number. */
export type UdpFamily = 4 | 6 | 'IPv4' | 'IPv6' | 'udp4' | 'udp6';

/** One row of `/proc/net/udp` or `/proc/net/udp6`. */
export interface ProcUdpRow {
  /** 4 or 6 (which file). */
  family: 4 | 6;
  /** Local address bytes in network order (4 or 16). */
  localAddress: Uint8Array;
  /** Local port. */
  localPort: number;
  /** Bytes waiting in the receive queue. */
  rxQueue: number;
  /** Socket inode. */
  inode: number;
  /** Datagrams the kernel dropped for this socket since it was created. */
  drops: number;
}

const PROC_UDP = { 4: '/proc/net/udp', 6: '/proc/net/udp6' } as const;
const RMEM_MAX = '/proc/sys/net/core/rmem_max';
const LITTLE_ENDIAN = os.endianness() === 'LE';

function familyOf(f: UdpFamily): 4 | 6 | null {
  if (f === 4 || f === 'IPv4' || f === 'udp4') return 4;
  if (f === 6 || f === 'IPv6' || f === 'udp6') return 6;
  return null;
}

/** The kernel prints each 32-bit word of an address as `%08X` of its in-memory value: undo the host byte order. */
function parseHexAddress(hex: string, family: 4 | 6): Uint8Array | null {
  const n = family === 4 ? 4 : 16;
  if (hex.length !== 2 * n || !/^[0-9A-Fa-f]+$/.test(hex)) return null;
  const out = new Uint8Array(n);
  for (let w = 0; w < n / 4; w++) {
    const v = parseInt(hex.slice(8 * w, 8 * w + 8), 16);
    for (let j = 0; j < 4; j++) {
      const shift = LITTLE_ENDIAN ? 8 * j : 8 * (3 - j);
      out[4 * w + j] = (v >>> shift) & 0xff;
    }
  }
  return out;
}

/**
 * Parse the text of `/proc/net/udp` (`family` 4) or `/proc/net/udp6` (6): the header
 * line, then per socket `sl local_address rem_address st tx_queue:rx_queue tr:tm->when
 * retrnsmt uid timeout inode ref pointer drops`. Rows that do not have that shape are
 * skipped. Pure; exported for tests.
 */
export function parseProcNetUdp(text: string, family: 4 | 6): ProcUdpRow[] {
  const rows: ProcUdpRow[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 13 || !f[0]!.endsWith(':')) continue;
    const [addrHex, portHex] = f[1]!.split(':');
    const queues = f[4]!.split(':');
    const localAddress = parseHexAddress(addrHex ?? '', family);
    const localPort = parseInt(portHex ?? '', 16);
    const drops = Number(f[12]);
    if (localAddress === null || !Number.isInteger(localPort) || !Number.isSafeInteger(drops)) continue;
    rows.push({
      family,
      localAddress,
      localPort,
      rxQueue: parseInt(queues[1] ?? '0', 16) || 0,
      inode: Number(f[9]) || 0,
      drops,
    });
  }
  return rows;
}

/** Read and parse `/proc/net/udp` (4) or `/proc/net/udp6` (6), or null off Linux / when unreadable (for {@link readKernelDrops}; ENGINE.md "Nothing is lost silently"). */
export function readProcNetUdp(family: 4 | 6): ProcUdpRow[] | null {
  if (process.platform !== 'linux') return null;
  try {
    return parseProcNetUdp(fs.readFileSync(PROC_UDP[family], 'utf8'), family);
  } catch {
    return null;
  }
}

/** Address text → bytes in network order, or null (accepts what `dgram`'s `address()` reports). */
function addressBytes(address: string, family: 4 | 6): Uint8Array | null {
  if (family === 4) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
    if (m === null) return null;
    const b = m.slice(1).map(Number);
    return b.every((x) => x <= 255) ? new Uint8Array(b) : null;
  }
  let s = address.replace(/%.*$/, ''); // zone index
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  const tail: number[] = [];
  if (v4 !== null) {
    const b = v4.slice(1).map(Number);
    if (!b.every((x) => x <= 255)) return null;
    s = s.slice(0, v4.index) + '0:0';
    tail.push(...b);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (h: string): number[] | null => (h === '' ? [] : h.split(':').map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === null || rest === null || [...head, ...rest].some((g) => Number.isNaN(g))) return null;
  const fill = 8 - head.length - rest.length;
  if ((halves.length === 2 && fill < 1) || (halves.length === 1 && fill !== 0)) return null;
  const groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Datagrams the kernel dropped for the UDP socket(s) bound to local `port` in `family`
 * (the `drops` column of `/proc/net/udp` / `/proc/net/udp6`), summed over every
 * matching socket; with `address`, only sockets bound to exactly that local address.
 * A dual-stack socket bound to `::` is listed in `/proc/net/udp6` only.
 *
 * Returns `null` off Linux, when the table cannot be read, or when no such socket
 * exists (in this network namespace). Never throws. For the engine's books
 * (ENGINE.md "Nothing is lost silently"; PROTOCOL.md §4 "It is counted").
 */
export function readKernelDrops(port: number, family: UdpFamily = 4, address?: string): number | null {
  const fam = familyOf(family);
  if (fam === null || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  let want: Uint8Array | null = null;
  if (address !== undefined) {
    want = addressBytes(address, fam);
    if (want === null) return null;
  }
  const rows = readProcNetUdp(fam);
  if (rows === null) return null;
  let found = false;
  let drops = 0;
  for (const r of rows) {
    if (r.localPort !== port || (want !== null && !sameBytes(r.localAddress, want))) continue;
    found = true;
    drops += r.drops;
  }
  return found ? drops : null;
}

/**
 * `net.core.rmem_max` in bytes (`/proc/sys/net/core/rmem_max`): the largest receive
 * buffer `setRecvBufferSize` can get without privileges (ENGINE.md "Platform facts").
 * `null` off Linux or when unreadable. Never throws.
 */
export function readRmemMax(): number | null {
  if (process.platform !== 'linux') return null;
  try {
    const v = Number(fs.readFileSync(RMEM_MAX, 'utf8').trim());
    return Number.isSafeInteger(v) && v > 0 ? v : null;
  } catch {
    return null;
  }
}

/**
 * One line for the operator when the receive buffer asked for (`requested`, bytes) was
 * capped: the socket reports `granted` (`getRecvBufferSize()`; Linux reports double
 * what it grants). With `rmemMax` known (default {@link readRmemMax}) the note names the
 * sysctl and the value to set; otherwise it compares `granted` with `requested`. `null`
 * when nothing was capped. Bursts beyond the buffer are kernel drops, visible only
 * through {@link readKernelDrops} (ENGINE.md "Platform facts").
 */
export function recvBufferNote(requested: number, granted: number, rmemMax: number | null = readRmemMax()): string | null {
  if (rmemMax !== null) {
    if (requested <= rmemMax) return null;
    return (
      `socket receive buffer capped by net.core.rmem_max = ${rmemMax} bytes (asked for ${requested}, got ${granted}): ` +
      `raise it with 'sysctl -w net.core.rmem_max=${requested}' to absorb bursts`
    );
  }
  if (granted >= requested) return null;
  return `socket receive buffer is ${granted} bytes, below the ${requested} asked for: raise the system's receive buffer limit to absorb bursts`;
}

/**
 * The receive buffer note of a lane's socket ({@link recvBufferNote}): `reported` is
 * `SO_RCVBUF` as the kernel reports it (getsockopt, Node's `getRecvBufferSize()`), double
 * what it grants (socket(7)), so the granted half is what is compared with `requested` and
 * named. Root's `SO_RCVBUFFORCE` may pass `net.core.rmem_max`: granted in full, no note.
 * Else the note names the cap — including one between half the request and the request,
 * which the doubled value hid.
 */
export function reportedRecvBufferNote(requested: number, reported: number, rmemMax?: number | null): string | null {
  const granted = Math.floor(reported / 2);
  if (granted >= requested) return null;
  return recvBufferNote(requested, granted, rmemMax) ?? recvBufferNote(requested, granted, null);
}
