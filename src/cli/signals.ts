/**
 * SIGINT / SIGTERM for the long-running commands (`serve`, `agent`, `probe`): the first
 * signal starts the command's own orderly stop (drain, figures, files); later ones, until
 * the command is done, are answered with one line and otherwise ignored — a shell that
 * signals the whole process group, or an impatient second Ctrl-C, would otherwise hit
 * Node's default action and kill the process halfway through writing what the run
 * measured. SIGKILL still ends it at once.
 */

/** The handle {@link onStopSignals} returns. */
export interface StopSignals<T> {
  /** Settles with `stop()`'s result once a signal started it. */
  stopped: Promise<T>;
  /** The command stops for another reason (its duration ran out): signals from now on are answered as during a stop. */
  stopping(): void;
  /** The command is done: remove the handlers (Node's defaults again). */
  done(): void;
}

/** Call `stop` on the first SIGINT or SIGTERM; say `still stopping` through `say` on the later ones. */
export function onStopSignals<T>(stop: (sig: NodeJS.Signals) => Promise<T>, say: (line: string) => void): StopSignals<T> {
  let stopping = false; // a signal (or the command itself, {@link StopSignals.stopping}) started the stop
  let handler: (sig: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<T>((resolve, reject) => {
    handler = (sig) => {
      if (stopping) {
        say(`${sig}: still stopping (finishing what the run measured); SIGKILL to abandon it`);
        return;
      }
      stopping = true;
      stop(sig).then(resolve, reject);
    };
  });
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    stopped,
    stopping() {
      stopping = true;
    },
    done() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
