/**
 * The root key at rest (PROTOCOL.md §1 "Root key at rest") and heartbeat responses.
 *
 * `<StateDir>/mesh-root-key` holds exactly the 32 raw bytes, mode 0600, written
 * atomically (temp file 0600 in the same directory, write, fsync, rename, fsync the
 * directory). Loading refuses a wrong size, any group/other permission, a symlink or a
 * non-regular file. No message ever contains key bytes.
 */
import { createHash, KeyObject, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspect, type InspectOptions } from 'node:util';
import { DtmeshError } from '../errors.js';
import { assertValidId } from '../protocol/ids.js';
import { ROOT_KEY_LEN } from '../protocol/keys.js';

/** Key file name inside the state directory. */
export const ROOT_KEY_FILE = 'mesh-root-key';
/** Non-secret tenant description written beside it (0644; never holds the key). */
export const TENANT_FILE = 'tenant.json';

/** Path of the root key file of `stateDir`. */
export function rootKeyPath(stateDir: string): string {
  return path.join(stateDir, ROOT_KEY_FILE);
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Read and check the root key (PROTOCOL.md §1 "Root key at rest"). Throws a one-line
 * {@link DtmeshError} naming the file and the fix when it is missing, unsafe or the
 * wrong size.
 *
 * The file is opened once (`O_RDONLY | O_NOFOLLOW | O_NONBLOCK`: a symlink fails with
 * ELOOP, a FIFO cannot block the open) and every check — regular file, no group/other
 * permission, exactly 32 bytes — is made with `fstat` on that descriptor, which is then
 * the one read. Nothing checked by path can be swapped for something else before the
 * read (no TOCTOU window).
 */
export function loadRootKey(stateDir: string): Uint8Array {
  const file = rootKeyPath(stateDir);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw openError(e, stateDir, file);
  }
  try {
    return readRootKeyFd(fd, file);
  } finally {
    fs.closeSync(fd);
  }
}

function openError(e: unknown, stateDir: string, file: string): DtmeshError {
  switch (errno(e)) {
    case 'ENOENT':
      if (!fs.existsSync(stateDir)) {
        return new DtmeshError(`state directory ${stateDir} does not exist: create a key with 'dtmesh keys init --state-dir ${stateDir}'`);
      }
      return new DtmeshError(`no root key at ${file}: run 'dtmesh keys init --state-dir ${stateDir}' or apply a heartbeat`);
    case 'ELOOP': // O_NOFOLLOW on a symbolic link (Linux, macOS; EMLINK on FreeBSD)
    case 'EMLINK':
      return new DtmeshError(`${file} is a symbolic link; the root key must be a regular file in the state directory (replace it with 'dtmesh keys init --force')`);
    case 'ENXIO': // a UNIX socket, or a device with nothing behind it
    case 'ENODEV':
      return new DtmeshError(`${file} is not a regular file`);
    case 'EACCES':
      return new DtmeshError(`cannot read ${file}: permission denied (run as the key's owner)`);
    case 'ENOTDIR':
      return new DtmeshError(`state directory ${stateDir} is not a directory`);
    default:
      return new DtmeshError(`cannot read ${file}: ${errno(e) ?? String(e)}`);
  }
}

/** The checks and the read of {@link loadRootKey}, all on the one open descriptor. */
function readRootKeyFd(fd: number, file: string): Uint8Array {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (e) {
    throw new DtmeshError(`cannot read ${file}: ${errno(e) ?? String(e)}`);
  }
  if (!st.isFile()) throw new DtmeshError(`${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new DtmeshError(`${file} has mode ${mode}; it must not be accessible by group or others: chmod 600 ${file}`);
  }
  const wrongSize = (n: number): DtmeshError =>
    new DtmeshError(
      `${file} is ${n} bytes; a root key file holds exactly ${ROOT_KEY_LEN} raw bytes (re-create it with 'dtmesh keys init --force' or apply a heartbeat)`,
    );
  if (st.size !== ROOT_KEY_LEN) throw wrongSize(st.size);
  // One byte of slack shows a file that grew after the fstat; reused for nothing else.
  const buf = Buffer.alloc(ROOT_KEY_LEN + 1);
  let got = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
      if (got === buf.length) break;
    }
  } catch (e) {
    buf.fill(0);
    if (errno(e) === 'EACCES') throw new DtmeshError(`cannot read ${file}: permission denied (run as the key's owner)`);
    throw new DtmeshError(`cannot read ${file}: ${errno(e) ?? String(e)}`);
  }
  if (got !== ROOT_KEY_LEN) {
    buf.fill(0);
    throw wrongSize(got);
  }
  const key = new Uint8Array(buf.subarray(0, ROOT_KEY_LEN));
  buf.fill(0);
  return key;
}

/** What a file that is not a regular one is (`a FIFO`, `a directory`, …), for one-line errors. */
export function fileKind(st: fs.Stats | fs.BigIntStats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** Thrown by {@link readRegularFile} for a file of the wrong shape: {@link what} it is instead. */
export class NotRegularFile extends Error {
  constructor(
    /** `a FIFO`, `a directory`, … ({@link fileKind}), or `larger than N bytes`. */
    readonly what: string,
  ) {
    super(what.startsWith('larger') ? what : `not a regular file (${what})`);
  }
}

/**
 * Read a small state or input file (a nonce ceiling, a lock holder, a roster, a heartbeat)
 * that must be a regular file of at most `maxBytes`: opened without blocking — a FIFO
 * planted at the path would otherwise hold the process for ever at its first read —, with
 * `O_NOFOLLOW` when `noFollow`, and checked on the same descriptor (no race between the
 * check and the read). Throws the open's error (its `code` the errno) or a
 * {@link NotRegularFile}.
 */
export function readRegularFile(file: string, maxBytes: number, noFollow = false): { bytes: Buffer; mode: number } {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (noFollow ? fs.constants.O_NOFOLLOW : 0));
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new NotRegularFile(fileKind(st));
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    const bytes = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0));
    if (bytes.length > maxBytes) throw new NotRegularFile(`larger than ${maxBytes} bytes`);
    return { bytes, mode: st.mode & 0o777 };
  } finally {
    fs.closeSync(fd);
  }
}

/** Write `content` to `file` atomically with `mode`: temp + fsync + rename + directory fsync. */
export function writeFileAtomic(file: string, content: Uint8Array | string, mode: number): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = fs.openSync(tmp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, mode);
  try {
    try {
      fs.fchmodSync(fd, mode); // the umask may have narrowed or (for 0644) kept the mode; make it exact
      fs.writeSync(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  const dfd = fs.openSync(dir, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/**
 * `mkdir -p` with each directory made by a plain `mkdir` (mode `mode`): Node 20's
 * `mkdirSync(…, { recursive: true })` never returns for a path under /proc
 * (`/proc/x/y`: it retries the ENOENT for ever), a plain `mkdir` says ENOENT at once.
 */
function makeDirs(dir: string, mode: number): void {
  if (fs.existsSync(dir)) return;
  const parent = path.dirname(dir);
  if (parent !== dir) makeDirs(parent, mode);
  try {
    fs.mkdirSync(dir, { mode });
  } catch (e) {
    if (errno(e) !== 'EEXIST') throw e;
  }
}

/** Create `stateDir` (mode 0700) if needed; a clear error when it cannot be. */
export function ensureStateDir(stateDir: string): void {
  try {
    makeDirs(path.resolve(stateDir), 0o700);
  } catch (e) {
    throw new DtmeshError(`cannot create state directory ${stateDir}: ${errno(e) ?? String(e)}`);
  }
  if (!fs.statSync(stateDir).isDirectory()) throw new DtmeshError(`state directory ${stateDir} is not a directory`);
}

/**
 * Persist `root` (raw or a secret `KeyObject`, see {@link rootKeyBytes}) as
 * `<stateDir>/mesh-root-key` (PROTOCOL.md §1: 32 raw bytes, 0600, atomic). Then removes the temp files a writer killed mid-write left behind (see
 * {@link removeStaleTempFiles}): they never affect loading, but would pile up.
 */
export function saveRootKey(stateDir: string, root: Uint8Array | KeyObject): void {
  const bytes = rootKeyBytes(root, 'root key');
  ensureStateDir(stateDir);
  const file = rootKeyPath(stateDir);
  try {
    writeFileAtomic(file, bytes, 0o600);
  } catch (e) {
    throw new DtmeshError(`cannot write ${file}: ${errno(e) ?? String(e)}`);
  } finally {
    bytes.fill(0);
  }
  removeStaleTempFiles(file);
}

/**
 * Best effort: delete `file`'s temp files (`.<name>.tmp-<pid>-<12 hex>`, as
 * {@link writeFileAtomic} names them) whose writer process no longer exists — what a
 * crash between write and rename leaves (PROTOCOL.md §1 "Root key at rest"). A temp
 * file of a live process (or one this process cannot tell about) is left alone, so a
 * concurrent writer's rename is never broken. Never throws.
 */
export function removeStaleTempFiles(file: string): void {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]{12}$/.exec(name.slice(prefix.length));
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || !(pid > 0) || processExists(pid)) continue;
    try {
      fs.rmSync(path.join(dir, name), { force: true });
    } catch {
      // best effort: another sweeper got there first, or the directory is read-only
    }
  }
}

/** Whether process `pid` exists (signal 0 probes without sending; EPERM means it does). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) !== 'ESRCH';
  }
}

/**
 * `dtmesh keys init`: a fresh random root key in `stateDir`. Refuses to replace an
 * existing key unless `force`.
 */
export function initRootKey(stateDir: string, force: boolean): Uint8Array {
  const file = rootKeyPath(stateDir);
  if (!force && fs.existsSync(file)) {
    throw new DtmeshError(`${file} already exists; pass --force to replace it (every pair key changes)`);
  }
  const root = new Uint8Array(randomBytes(ROOT_KEY_LEN));
  saveRootKey(stateDir, root);
  // a tenant.json beside the key names the root it was written for: after --force that is
  // no longer this one, so its fingerprint is brought up to date (tenant and peers kept)
  const tenant = readTenantFile(stateDir);
  if (tenant !== null) {
    const tenantFile = path.join(stateDir, TENANT_FILE);
    try {
      writeFileAtomic(tenantFile, JSON.stringify({ ...tenant, root_fingerprint: rootFingerprint(root) }, null, 2) + '\n', 0o644);
    } catch (e) {
      throw new DtmeshError(`wrote the new root key, but cannot update its fingerprint in ${tenantFile}: ${errno(e) ?? String(e)}`);
    }
  }
  return root;
}

/** What `tenant.json` says (never the key: PROTOCOL.md §1 "Root key at rest"), as {@link persistHeartbeat} writes it. */
interface TenantFile {
  tenant_id: string;
  peers?: string[];
  root_fingerprint: string;
}

/**
 * `<stateDir>/tenant.json` when it is there and well-formed (a regular file, not a link,
 * a valid `tenant_id`, `peers` absent or valid agent IDs), else null: a missing or damaged
 * file is never an error, it only has nothing to keep.
 */
function readTenantFile(stateDir: string): TenantFile | null {
  try {
    const o = JSON.parse(readRegularFile(path.join(stateDir, TENANT_FILE), 1 << 20, true).bytes.toString('utf8')) as Partial<TenantFile>;
    assertValidId(o.tenant_id, 'tenant_id');
    if (o.peers !== undefined) {
      if (!Array.isArray(o.peers)) return null;
      o.peers.forEach((p, i) => assertValidId(p, `peers[${i}]`));
    }
    return { tenant_id: o.tenant_id as string, peers: o.peers, root_fingerprint: String(o.root_fingerprint) };
  } catch {
    return null;
  }
}

/**
 * A root key handed in through the API (PROTOCOL.md §1: 32 bytes), as raw bytes or as a
 * Node `KeyObject` (`crypto.createSecretKey(bytes)`) so an embedding application can keep
 * raw bytes out of its options object. Returns a fresh `Uint8Array` copy the caller owns.
 *
 * Throws a `TypeError` for anything but a `Uint8Array` or a secret `KeyObject`, and a
 * `RangeError` for the wrong length; the message starts with `what` (e.g.
 * `options.rootKey`) and never contains key bytes.
 */
export function rootKeyBytes(k: Uint8Array | KeyObject, what: string): Uint8Array {
  if (k instanceof KeyObject) {
    if (k.type !== 'secret') {
      throw new TypeError(`${what} must be a secret KeyObject (crypto.createSecretKey) of ${ROOT_KEY_LEN} bytes, not a ${k.type} key`);
    }
    if (k.symmetricKeySize !== ROOT_KEY_LEN) {
      throw new RangeError(`${what} must be exactly ${ROOT_KEY_LEN} bytes (this KeyObject holds ${k.symmetricKeySize})`);
    }
    const exported = k.export();
    const key = new Uint8Array(exported);
    exported.fill(0);
    return key;
  }
  if (!(k instanceof Uint8Array)) {
    throw new TypeError(`${what} must be a Uint8Array of ${ROOT_KEY_LEN} bytes or a secret KeyObject (crypto.createSecretKey)`);
  }
  if (k.length !== ROOT_KEY_LEN) throw new RangeError(`${what} must be exactly ${ROOT_KEY_LEN} bytes`);
  return new Uint8Array(k);
}

/** A short, non-secret fingerprint of a root key: `SHA-256("dtmesh-root-fingerprint" || root)[0:8]`, hex. */
export function rootFingerprint(root: Uint8Array): string {
  return createHash('sha256').update('dtmesh-root-fingerprint').update(root).digest('hex').slice(0, 16);
}

/**
 * A validated heartbeat response (PROTOCOL.md §1). One from {@link parseHeartbeat} keeps
 * `root` non-enumerable and prints (`util.inspect`, `console.log`, `JSON.stringify`) as
 * tenant, peers and the root's fingerprint only.
 */
export interface Heartbeat {
  /** `tenant_id`. */
  tenant: string;
  /** Decoded `mesh_root_key`, 32 bytes. Secret: never printed or serialised. */
  root: Uint8Array;
  /** `peers`, when present. */
  peers: string[] | null;
}

const BASE64 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Validate a heartbeat response `{"tenant_id", "mesh_root_key", "peers"?}`: standard
 * base64 decoding to exactly 32 bytes, valid IDs. Throws a `TypeError` saying what is
 * wrong (never echoing the key).
 */
export function parseHeartbeat(response: unknown): Heartbeat {
  if (typeof response !== 'object' || response === null || Array.isArray(response)) {
    throw new TypeError('heartbeat response must be a JSON object with tenant_id and mesh_root_key');
  }
  const r = response as Record<string, unknown>;
  assertValidId(r.tenant_id, 'heartbeat tenant_id');
  if (typeof r.mesh_root_key !== 'string' || !BASE64.test(r.mesh_root_key)) {
    throw new TypeError('heartbeat mesh_root_key must be standard base64 of exactly 32 bytes (44 characters)');
  }
  const root = new Uint8Array(Buffer.from(r.mesh_root_key, 'base64'));
  if (root.length !== ROOT_KEY_LEN) throw new TypeError('heartbeat mesh_root_key must decode to exactly 32 bytes');
  let peers: string[] | null = null;
  if (r.peers !== undefined) {
    if (!Array.isArray(r.peers)) throw new TypeError('heartbeat peers must be an array of agent IDs');
    r.peers.forEach((p, i) => assertValidId(p, `heartbeat peers[${i}]`));
    peers = r.peers as string[];
  }
  return hideRoot({ tenant: r.tenant_id as string, peers }, root);
}

/** `hb` plus a non-enumerable `root`, and an inspect/toJSON that show its fingerprint only. */
function hideRoot(hb: Omit<Heartbeat, 'root'>, root: Uint8Array): Heartbeat {
  const summary = (): { tenant: string; peers: string[] | null; root_fingerprint: string } => ({
    tenant: hb.tenant,
    peers: hb.peers,
    root_fingerprint: rootFingerprint(root),
  });
  return Object.defineProperties(hb, {
    root: { value: root, enumerable: false },
    toJSON: { value: summary, enumerable: false },
    [inspect.custom]: {
      value: (_depth: number, options: InspectOptions, inspectFn: typeof inspect = inspect): string => `Heartbeat ${inspectFn(summary(), options)}`,
      enumerable: false,
    },
  }) as Heartbeat;
}

/**
 * Persist what a heartbeat says to `stateDir`: the root key (atomic, 0600) and
 * `tenant.json` (tenant and peers only, 0644 — never the key). A heartbeat without
 * `peers` keeps the roster `tenant.json` held for the same tenant. All or nothing: when
 * `tenant.json` cannot be written, the root key that was on disk is put back (or the new one
 * removed when there was none), so a heartbeat reported as not applied does not rotate the
 * next start; one-line {@link DtmeshError} naming the file.
 */
export function persistHeartbeat(stateDir: string, hb: Heartbeat): void {
  const keyFile = rootKeyPath(stateDir);
  let previous: Uint8Array | null = null;
  let existed = false;
  try {
    previous = new Uint8Array(fs.readFileSync(keyFile));
    existed = true;
  } catch (e) {
    existed = errno(e) !== 'ENOENT'; // there but unreadable: it cannot be put back, so it is never removed
  }
  // read before anything is written: a heartbeat without `peers` says nothing about the
  // roster ('roster unchanged'), so the one stored for the same tenant is kept
  const stored = hb.peers === null ? readTenantFile(stateDir) : null;
  const peers = hb.peers ?? (stored?.tenant_id === hb.tenant ? stored.peers : undefined);
  saveRootKey(stateDir, hb.root);
  const tenant = { tenant_id: hb.tenant, peers, root_fingerprint: rootFingerprint(hb.root) };
  const tenantFile = path.join(stateDir, TENANT_FILE);
  try {
    writeFileAtomic(tenantFile, JSON.stringify(tenant, null, 2) + '\n', 0o644);
  } catch (e) {
    let undo = 'the root key on disk is as it was';
    try {
      if (previous !== null) writeFileAtomic(keyFile, previous, 0o600); // byte for byte, as it was
      else if (!existed) fs.rmSync(keyFile, { force: true });
      else undo = "the root key on disk is the heartbeat's (the previous one could not be read to put it back)";
    } catch (again) {
      undo = `the root key on disk is the heartbeat's (putting the previous one back failed: ${errno(again) ?? String(again)})`;
    } finally {
      previous?.fill(0);
    }
    throw new DtmeshError(`cannot write ${tenantFile}: ${errno(e) ?? String(e)}; ${undo}`);
  }
  previous?.fill(0);
}
