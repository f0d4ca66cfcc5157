/**
 * What every JSON document of the prober carries besides its figures (MEASUREMENT.md
 * §3): the schema version, the dtmesh version, the host. The version is read once from
 * the package.json next to the build (`dist/src/probe/` → the package root).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/** Version of the report's JSON layout (src/probe/report.schema.json). Bumped on any incompatible change. */
export const SCHEMA_VERSION = 1;

let version: string | undefined;

/** The dtmesh version (package.json), or "unknown" when it cannot be read. */
export function dtmeshVersion(): string {
  if (version !== undefined) return version;
  version = 'unknown';
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'dtmesh' && typeof pkg.version === 'string') {
        version = pkg.version;
        break;
      }
    } catch {
      // not there: try the next layout
    }
  }
  return version;
}

/** The host a report was made on. */
export interface HostInfo {
  platform: string;
  arch: string;
  release: string;
  cpus: number;
  cpu_model: string;
  node: string;
}

/** This host. */
export function hostInfo(): HostInfo {
  const cpus = os.cpus();
  return { platform: process.platform, arch: process.arch, release: os.release(), cpus: os.availableParallelism(), cpu_model: cpus[0]?.model ?? 'unknown', node: process.version };
}
