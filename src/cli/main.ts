/**
 * The `dtmesh` command line: a thin layer over the public API. User errors print one
 * line on stderr and exit 2 (usage) or 1 (runtime); never a stack trace, never a key.
 */
import { DtmeshError } from '../errors.js';
import { dtmeshVersion } from '../probe/context.js';
import { agentCommand } from './agent.js';
import { demoCommand } from './demo.js';
import { keysCommand } from './keys.js';
import { probeCommand } from './probe.js';
import { serveCommand } from './serve.js';

const HELP = `Usage: dtmesh <command> [flags]

Commands:
  keys init|apply-heartbeat|show   manage the tenant root key (see 'dtmesh keys --help')
  serve                            run the authenticated responder
  probe                            send authenticated probe bursts and report RTT, loss, jitter
  agent                            serve and keep measuring every peer of the roster (the mesh)
  demo                             a whole dev mesh on loopback, no setup (npm start)
  bench                            end-to-end benchmark: engine vs naive vs echo (npm run bench)
  --help                           this text
  --version                        print the dtmesh version

Each command takes --help.
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  keys: keysCommand,
  serve: serveCommand,
  probe: probeCommand,
  agent: agentCommand,
  demo: demoCommand,
  bench: async (argv) => {
    // The benchmarks live in bench/ (built beside src/ in a clone), not in the package.
    let mod: { benchCommand: (argv: string[]) => Promise<number> };
    try {
      mod = await import('../../bench/e2e.js');
    } catch {
      throw new DtmeshError("the benchmarks run from a clone of the dtmesh repository: 'npm install && npm run bench' there");
    }
    return mod.benchCommand(argv);
  },
};

/**
 * A reader of stdout or stderr that went away (`| head`: EPIPE) — or any later error of
 * those streams — must not end a run with an unhandled 'error' and a stack: the lines
 * written there are lost, the run goes on and writes its files. (`--json-stream -` says
 * so in one line on stderr: output.ts LineSink.)
 */
function keepRunningWhenOutputCloses(): void {
  for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
}

/** Run the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  keepRunningWhenOutputCloses();
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    // asked for: stdout, exit 0; no command is a usage error: stderr, exit 2 (`dtmesh > f` keeps f clean)
    (cmd === undefined ? process.stderr : process.stdout).write(HELP);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`dtmesh ${dtmeshVersion()}\n`);
    return 0;
  }
  const run = commands[cmd];
  if (run === undefined) {
    process.stderr.write(`dtmesh: unknown command '${cmd}' (see 'dtmesh --help')\n`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (e) {
    if (e instanceof DtmeshError) {
      process.stderr.write(`${e.message.startsWith('dtmesh') ? '' : `dtmesh ${cmd}: `}${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof TypeError || e instanceof RangeError) {
      process.stderr.write(`dtmesh ${cmd}: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`dtmesh ${cmd}: unexpected error: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`dtmesh: ${(e as Error)?.message ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
