/**
 * Interrupts (SIGINT, SIGTERM — Airflow's task timeout sends the latter)
 * end the run the way a failure does: staging and locks are removed, and the
 * exit code is 128 + the signal. Until the command's first commit the
 * previous output stays as it was; after it, the message says what this run
 * committed and what it did not (`willCommit`, `committed`), as the output is
 * no longer the previous one. Once the summary line is written (`finished`),
 * a signal no longer changes the exit code: the summary's stands.
 *
 * No imports: src/cli.ts installs the handlers before it loads the rest.
 */
const cleanups = new Set<() => void>();

/** Runs `fn` if the process is interrupted; returns the function that unregisters it. */
export function onInterrupt(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** A part of the output a command commits: a dataset, the statistics, the report… */
export interface Part {
  readonly name: string;
  done: boolean;
  /** Set while the part is only partly committed (a process between two hospitals). */
  partly?: string;
}

const parts: Part[] = [];
/** What the command still has to do once its output is committed (`metrics not pushed`). */
const unfinished = new Set<string>();
/** The summary's exit code, once it is written. */
let finishedWith: number | null = null;

const partNamed = (name: string): Part => {
  let p = parts.find((x) => x.name === name);
  if (!p) parts.push((p = { name, done: false }));
  return p;
};

/** Declares the parts the command commits, in order (`run`: vitals, labs, the statistics, the report). */
export function willCommit(...names: string[]): void {
  for (const n of names) partNamed(n);
}

/** Part of `name` is in place, and not the rest (`detail` says which): an interrupt now says so. */
export function partlyCommitted(name: string, detail: string): void {
  partNamed(name).partly = detail;
}

/** `name` is in place: an interrupt from now on says so instead of "the previous output stays". */
export function committed(name: string): void {
  const p = partNamed(name);
  p.done = true;
  delete p.partly;
  signalPoint(`committed:${name}`);
}

/** Registers a step left to do after the commits (`metrics not pushed`); returns the function that marks it done. */
export function stillToDo(what: string): () => void {
  unfinished.add(what);
  return () => unfinished.delete(what);
}

/**
 * The summary line is written and says `exitCode`: from now on a signal is only logged, and the process exits
 * with that code (the CLI exits as soon as stdout has taken the line: see installSignalHandlers).
 */
export function finished(exitCode: number): void {
  finishedWith = exitCode;
}

const list = (xs: readonly string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

/**
 * The interrupt message: what was committed, what only partly, and what not (pure, for the tests).
 * Nothing committed: the run's partial output is removed and the previous output stays.
 */
export function interruptMessage(signal: string, state: readonly Part[], after: readonly string[]): string {
  const done = state.filter((p) => p.done).map((p) => p.name);
  const partly = state.filter((p) => !p.done && p.partly !== undefined);
  const todo = state.filter((p) => !p.done && p.partly === undefined).map((p) => p.name);
  if (done.length === 0 && partly.length === 0) return `interrupted by ${signal}: removing this run's partial output; the previous output stays`;
  const what = todo.length === 0 && partly.length === 0 && done.length > 1 ? 'the output' : list(done);
  const clauses = [
    ...(done.length > 0 ? [`after committing ${what}`] : []),
    ...partly.map((p) => `while committing ${p.name} (${p.partly})`),
  ];
  return [`interrupted by ${signal} ${clauses.join(' and ')}`, ...(todo.length > 0 ? [`${list(todo)} not written`] : []), ...after].join('; ');
}

/**
 * HCP_FAULT_SIGNAL=<point>: the process sends itself SIGTERM there, for the tests (as HCP_FAULT_KILL=<point>
 * SIGKILLs it, src/sinks/fsutil.ts). The handler runs when the event loop next turns. Points: `committed:<part>`
 * (just after the part is committed).
 */
export function signalPoint(point: string): void {
  if (process.env.HCP_FAULT_SIGNAL === point) process.kill(process.pid, 'SIGTERM');
}

/** @param report told the message and exit code before the cleanups run (the CLI logs it and writes its summary). */
export function installSignalHandlers(report: (message: string, exitCode: number) => void): void {
  for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]] as const) {
    let seen = false;
    process.on(signal, () => {
      if (finishedWith !== null) {
        // The summary is written: exiting 128 + n would contradict it (an "ok" line with exit 143). The exit
        // under way stands; a second signal ends the wait for stdout to take the line, with the same code.
        process.stderr.write(`${signal} after the summary was written: ignored (exit code ${finishedWith})\n`);
        if (seen) process.exit(finishedWith);
        seen = true;
        return;
      }
      if (seen) return;
      seen = true;
      report(interruptMessage(signal, parts, [...unfinished]), 128 + number);
      for (const fn of cleanups) {
        try {
          fn();
        } catch {
          /* best effort: exiting anyway */
        }
      }
      process.exit(128 + number);
    });
  }
}
