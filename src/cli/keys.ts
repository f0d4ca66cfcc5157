/**
 * `dtmesh keys init|apply-heartbeat|show` — the root key at rest (PROTOCOL.md §1).
 */
import * as fs from 'node:fs';
import { DtmeshError } from '../errors.js';
import { initRootKey, loadRootKey, parseHeartbeat, persistHeartbeat, rootFingerprint, rootKeyPath } from '../keys/keystore.js';
import { assertValidId, senderIdOf } from '../protocol/ids.js';
import { parseFlags, required, usage } from './args.js';
import { readInputFile } from './output.js';

const HELP = `Usage:
  dtmesh keys init --state-dir DIR [--force]
      Create DIR if needed and write a fresh random 32-byte root key to
      DIR/mesh-root-key (mode 0600, atomic). Refuses to replace an existing key
      unless --force (every pair key changes).
  dtmesh keys apply-heartbeat --state-dir DIR [--file F]
      Apply a heartbeat response {"tenant_id", "mesh_root_key", "peers"?} read from
      F (default: standard input): validate, then persist the key and tenant.json
      (without "peers": the roster tenant.json holds is kept).
  dtmesh keys show --state-dir DIR --tenant T --agent A
      Print A's sender_id and a short fingerprint of the root (never the key).
`;

/** Run `dtmesh keys …`; returns the exit code. */
export async function keysCommand(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    // asked for: stdout, exit 0; no subcommand is a usage error: stderr, exit 2
    (sub === undefined ? process.stderr : process.stdout).write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const rest = argv.slice(1);
  if (sub === 'init') {
    const v = parseFlags('keys init', rest, { 'state-dir': { type: 'string' }, force: { type: 'boolean' } });
    if (v.help) return help();
    const dir = required('keys init', v, 'state-dir');
    const root = initRootKey(dir, v.force === true);
    process.stdout.write(`wrote a new root key to ${rootKeyPath(dir)} (fingerprint ${rootFingerprint(root)})\n`);
    return 0;
  }
  if (sub === 'apply-heartbeat') {
    const v = parseFlags('keys apply-heartbeat', rest, { 'state-dir': { type: 'string' }, file: { type: 'string' } });
    if (v.help) return help();
    const dir = required('keys apply-heartbeat', v, 'state-dir');
    const file = typeof v.file === 'string' ? v.file : null;
    let text: string;
    try {
      // a pipe (--file /dev/stdin, --file <(vault read …): the key never rests on disk) is read
      // as it comes — a one-shot command, Ctrl-C still ends it; a regular file is checked first
      const pipe = file !== null && ((st) => st.isFIFO() || st.isCharacterDevice())(fs.statSync(file));
      if (file === null || pipe) text = fs.readFileSync(file ?? 0, 'utf8');
      else {
        const f = readInputFile(file);
        text = f.text;
        if ((f.mode & 0o077) !== 0) process.stderr.write(`dtmesh keys: ${file} can be read by other users (mode ${f.mode.toString(8).padStart(4, '0')}) and holds the root key: chmod 600 it or remove it\n`);
      }
    } catch (e) {
      throw new DtmeshError(`cannot read ${file ?? 'standard input'}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new DtmeshError(`${file ?? 'standard input'} is not valid JSON (expected a heartbeat response object)`);
    }
    let hb;
    try {
      hb = parseHeartbeat(json);
    } catch (e) {
      throw new DtmeshError(`${(e as Error).message}; nothing was changed`);
    }
    persistHeartbeat(dir, hb);
    const peers = hb.peers === null ? 'roster unchanged' : `${hb.peers.length} peers`;
    process.stdout.write(`applied heartbeat for tenant ${hb.tenant}: root ${rootFingerprint(hb.root)}, ${peers}\n`);
    return 0;
  }
  if (sub === 'show') {
    const v = parseFlags('keys show', rest, { 'state-dir': { type: 'string' }, tenant: { type: 'string' }, agent: { type: 'string' } });
    if (v.help) return help();
    const dir = required('keys show', v, 'state-dir');
    const tenant = required('keys show', v, 'tenant');
    const agent = required('keys show', v, 'agent');
    try {
      assertValidId(tenant, '--tenant');
      assertValidId(agent, '--agent');
    } catch (e) {
      throw usage('keys show', (e as Error).message);
    }
    const root = loadRootKey(dir);
    process.stdout.write(
      `tenant ${tenant}\nagent ${agent}\nsender_id ${Buffer.from(senderIdOf(agent)).toString('hex')}\nroot fingerprint ${rootFingerprint(root)}\n`,
    );
    return 0;
  }
  throw usage('keys', `unknown subcommand '${sub}'; expected init, apply-heartbeat or show`);
}

function help(): number {
  process.stdout.write(HELP);
  return 0;
}
