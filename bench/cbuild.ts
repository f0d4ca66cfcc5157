/**
 * Builds the C reference programs of the benchmarks (bench/c/responder.c, bench/c/prober.c)
 * at run time with the machine's C compiler (`$CC`, else `cc`): `cc -O2` into
 * dist/bench/c/. They need nothing but a C compiler and libc (SHA-256, HMAC and HKDF are
 * in bench/c/dtcrypto.h). A binary newer than its sources is reused; a build goes to a
 * temporary name first and is renamed into place, so concurrent builds never see a
 * half-written file. No compiler → {@link CBuild} `skip` with a one-line reason; a
 * compile error is an error (a bug in the sources, never silently skipped).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The C programs (selftest: the primitives against the shared vectors, for test/bench-c.test.ts). */
export type CProgram = 'responder' | 'prober' | 'selftest';

/** A built program's path, or why there is none. */
export type CBuild = { bin: string; skip?: undefined } | { bin?: undefined; skip: string };

/** bench/c/ of the source tree (from dist/bench/ or, run from sources, bench/). */
export function cSourceDir(): string {
  for (const d of [path.resolve(here, '../../bench/c'), path.resolve(here, 'c')]) {
    if (fs.existsSync(path.join(d, 'responder.c'))) return d;
  }
  throw new Error(`bench/c/responder.c not found next to ${here}`);
}

/** Where the binaries go: dist/bench/c/. */
export function cBinDir(): string {
  return path.join(here, 'c');
}

/** The compiler command (`$CC` or `cc`), or null when there is none. */
export function cCompiler(): string | null {
  const cc = process.env.CC && process.env.CC.trim() !== '' ? process.env.CC.trim() : 'cc';
  const r = spawnSync(cc, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? cc : null;
}

const built = new Map<CProgram, CBuild>();

/** Build (or reuse) `prog`; `{skip}` when no C compiler is installed. */
export function buildC(prog: CProgram): CBuild {
  const done = built.get(prog);
  if (done) return done;
  const src = cSourceDir();
  const file = path.join(src, `${prog}.c`);
  const deps = [file, path.join(src, 'dtcrypto.h'), path.join(src, 'dtproto.h')];
  const bin = path.join(cBinDir(), prog);
  const newest = Math.max(...deps.map((d) => fs.statSync(d).mtimeMs));
  let result: CBuild;
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= newest) {
    result = { bin };
  } else {
    const cc = cCompiler();
    if (cc === null) {
      result = { skip: `no C compiler (${process.env.CC ? `$CC=${process.env.CC}` : 'cc'} not found): the C ${prog} is not built` };
    } else {
      fs.mkdirSync(cBinDir(), { recursive: true });
      const tmp = `${bin}.tmp-${process.pid}`;
      const args = ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-o', tmp, file, '-lm'];
      const r = spawnSync(cc, args, { encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0) {
        fs.rmSync(tmp, { force: true });
        throw new Error(`${cc} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
      }
      fs.renameSync(tmp, bin);
      result = { bin };
    }
  }
  built.set(prog, result);
  return result;
}
