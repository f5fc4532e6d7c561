/** Human logs go to stderr (stdout carries only the JSON summary). */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function stderrLogger(quiet = false): Logger {
  const at = () => new Date().toISOString().slice(11, 19);
  return {
    info: (m) => {
      if (!quiet) process.stderr.write(`${at()} ${m}\n`);
    },
    warn: (m) => process.stderr.write(`${at()} WARNING ${m}\n`),
    error: (m) => process.stderr.write(`error: ${m}\n`),
  };
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
