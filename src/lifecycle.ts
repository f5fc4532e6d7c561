/**
 * Interrupts (SIGINT, SIGTERM — Airflow's task timeout sends the latter)
 * end the run the way a failure does: staging and locks are removed, the
 * previous committed output stays, and the exit code is 128 + the signal.
 */
const cleanups = new Set<() => void>();

/** Runs `fn` if the process is interrupted; returns the function that unregisters it. */
export function onInterrupt(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** @param report told the message and exit code before the cleanups run (the CLI logs it and writes its summary). */
export function installSignalHandlers(report: (message: string, exitCode: number) => void): void {
  for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]] as const) {
    process.once(signal, () => {
      report(`interrupted by ${signal}: removing this run's partial output; the previous output stays`, 128 + number);
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
