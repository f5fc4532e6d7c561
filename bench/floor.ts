/**
 * The physical floor: read the same bytes and do the least possible work
 * with them (count LF bytes) in Node with 1 MiB synchronous reads. No job
 * can read its input faster than this on the same machine.
 *
 * Usage: node dist/bench/floor.js FILE   → one JSON line {bytes, newlines, duration_ms, mb_per_s}
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface FloorResult {
  bytes: number;
  newlines: number;
  duration_ms: number;
  /** Decimal megabytes (1e6 bytes) per second. */
  mb_per_s: number;
}

/** Counts newlines in `file` with `blockSize`-byte reads; timed in-process. */
export function countNewlines(file: string, blockSize = 1 << 20): FloorResult {
  const t0 = performance.now();
  const buf = Buffer.allocUnsafe(blockSize);
  const fd = openSync(file, 'r');
  let bytes = 0;
  let newlines = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, blockSize, null);
      if (n === 0) break;
      bytes += n;
      const block = n === blockSize ? buf : buf.subarray(0, n);
      for (let i = block.indexOf(10); i !== -1; i = block.indexOf(10, i + 1)) newlines++;
    }
  } finally {
    closeSync(fd);
  }
  const ms = performance.now() - t0;
  return { bytes, newlines, duration_ms: Math.round(ms * 10) / 10, mb_per_s: Math.round(bytes / 1e6 / (ms / 1000)) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/floor.js FILE\n');
    process.exitCode = 2;
  } else {
    process.stdout.write(JSON.stringify(countNewlines(file)) + '\n');
  }
}
