/**
 * The error catalogue: every run-level failure has a stable `code`, an exit
 * code (SPEC §6) and context. Row problems are never thrown: they are data
 * (see src/rules/codes.ts). Match on `code`, not `instanceof`: errors that
 * cross a worker boundary arrive as plain objects. Not in the catalogue, as
 * nothing throws it: `HCP_ERR_INTERRUPTED`, the code of the summary a
 * SIGINT/SIGTERM ends a command with (exit 130/143, src/cli.ts).
 */

export const EXIT = { ok: 0, internal: 1, usage: 2, gate: 3 } as const;

const CATALOGUE = {
  HCP_ERR_USAGE: { exit: EXIT.usage, message: 'Bad command-line usage' },
  HCP_ERR_INPUT_MISSING: { exit: EXIT.usage, message: 'Input file not found' },
  HCP_ERR_INPUT_UNREADABLE: { exit: EXIT.usage, message: 'Input file cannot be read' },
  HCP_ERR_BAD_HEADER: { exit: EXIT.usage, message: 'Input file header is unusable' },
  HCP_ERR_NOT_CSV: { exit: EXIT.usage, message: 'Input file is not a CSV text file' },
  HCP_ERR_OUTPUT_UNUSABLE: { exit: EXIT.usage, message: 'The output directory cannot be created or written' },
  HCP_ERR_LOCKED: { exit: EXIT.usage, message: 'Another run holds the lock for this partition' },
  HCP_ERR_KEY_MISSING: { exit: EXIT.usage, message: 'HCP_PSEUDONYM_KEY is not set and --require-key was given' },
  HCP_ERR_KEY_INVALID: { exit: EXIT.usage, message: 'HCP_PSEUDONYM_KEY is set but cannot be used as a key' },
  HCP_ERR_NO_SKETCHES: { exit: EXIT.usage, message: 'No sketches found to merge' },
  HCP_ERR_NO_STATS: { exit: EXIT.usage, message: 'Statistics missing or not from the commits now in the manifests: run stats first' },
  HCP_ERR_INTERRUPTED_COMMIT: { exit: EXIT.usage, message: 'A process was interrupted while committing its hospitals: run it again' },
  HCP_ERR_LEDGER: { exit: EXIT.internal, message: 'Ledger mismatch: rows read != curated + rejected' },
  HCP_ERR_WORKER: { exit: EXIT.internal, message: 'A worker failed twice on the same chunk' },
  HCP_ERR_INTERNAL: { exit: EXIT.internal, message: 'Internal error' },
  HCP_ERR_GATE: { exit: EXIT.gate, message: 'A quality gate failed' },
} as const;

export type ErrorCode = keyof typeof CATALOGUE;

export interface ErrorContext {
  file?: string;
  line?: number;
  column?: number | string;
  option?: string;
  [key: string]: unknown;
}

/** A run-level failure with a stable code and an exit code. */
export class PipelineError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message?: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message ?? CATALOGUE[code].message, options);
    this.name = 'PipelineError';
    this.code = code;
    this.exitCode = CATALOGUE[code].exit;
    this.context = context;
  }

  /** One line for humans: message plus file:line:column when known. */
  describe(): string {
    const { file, line, column } = this.context;
    const where = file ? ` (${file}${line !== undefined ? `:${line}` : ''}${column !== undefined ? `, column ${column}` : ''})` : '';
    return `${this.message}${where}`;
  }
}

/** Shorthands for the common cases, so call sites read as sentences. */
export const usageError = (message: string, option?: string) => new PipelineError('HCP_ERR_USAGE', message, { option });
