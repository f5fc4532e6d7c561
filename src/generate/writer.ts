/**
 * Buffered, streaming file output for the generator. The producer hands over
 * text in small pieces (a few KiB of rows: long string concatenations are
 * ropes that the garbage collector must trace and promote, which costs more
 * than generating the rows); they are copied as UTF-8 into a ~1 MiB Buffer,
 * and a full Buffer is written while the next one fills (double buffering).
 * The producer waits for the previous write before handing over another
 * chunk, so memory stays flat whatever the row count.
 *
 * The file is written under a temporary name and renamed when complete, so
 * an interrupted run never leaves a truncated CSV that looks finished.
 */

import { close as closeFd, openSync, renameSync, rmSync, write as writeFd } from 'node:fs';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { onInterrupt } from '../lifecycle.js';

/** Bytes per write to the file. */
const CHUNK_BYTES = 1 << 20;

const writeAt = promisify(writeFd);
const closeAsync = promisify(closeFd);

export class ChunkWriter {
  /** Bytes handed to the file so far. */
  bytes = 0;
  private pending: Promise<void> = Promise.resolve();
  private failed: unknown;
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  /** An interrupt (SIGINT, SIGTERM) removes the temporary file (src/lifecycle.ts) until it is committed or aborted. */
  private readonly forget: () => void;

  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private readonly fd: number,
  ) {
    this.forget = onInterrupt(() => rmSync(tmpPath, { force: true }));
  }

  /**
   * Opens `<path>.tmp-<pid>` for writing; `finish` then `commit` move it to `path`. The
   * file is created synchronously and its interrupt cleanup registered in the
   * same step: with an asynchronous open, a SIGTERM arriving after the file
   * existed but before the cleanup was registered left it behind.
   */
  static async open(path: string): Promise<ChunkWriter> {
    const tmpPath = `${path}.tmp-${process.pid}`;
    return new ChunkWriter(path, tmpPath, openSync(tmpPath, 'w'));
  }

  /** Appends `text`; when the chunk is full, waits for the previous write (backpressure) and starts this one. */
  async write(text: string): Promise<void> {
    // A UTF-16 unit is at most 3 UTF-8 bytes: make sure `text` fits before copying.
    if (this.used > 0 && this.used + text.length * 3 > this.buf.length) await this.flush();
    if (text.length * 3 > this.buf.length) {
      await this.send(Buffer.from(text, 'utf8'));
      return;
    }
    this.used += this.buf.write(text, this.used, 'utf8');
    if (this.used >= CHUNK_BYTES - (CHUNK_BYTES >> 4)) await this.flush();
  }

  /** Starts writing whatever is buffered. */
  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const chunk = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(CHUNK_BYTES); // the old one stays untouched while in flight
    this.used = 0;
    await this.send(chunk);
  }

  private async send(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    await this.pending;
    if (this.failed !== undefined) throw this.failed;
    this.pending = this.writeAll(chunk).catch((e: unknown) => {
      this.failed = e;
    });
  }

  /** Flushes and closes the temporary file, which stays under its temporary name until `commit`. */
  async finish(): Promise<void> {
    await this.flush();
    await this.pending;
    await closeAsync(this.fd);
    if (this.failed !== undefined) {
      await rm(this.tmpPath, { force: true });
      throw this.failed;
    }
  }

  /**
   * Moves the finished file into place, synchronously: files committed one after the other in the same
   * tick (a data file and its labels) are all in place or none is when an interrupt is handled.
   */
  commit(): void {
    renameSync(this.tmpPath, this.path);
    this.forget();
  }

  /** Closes and deletes the temporary file (after an error elsewhere). */
  async abort(): Promise<void> {
    await this.pending;
    await closeAsync(this.fd).catch(() => undefined);
    await rm(this.tmpPath, { force: true });
    this.forget();
  }

  private async writeAll(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await writeAt(this.fd, buf, off, buf.length - off, null);
      off += bytesWritten;
    }
  }
}
