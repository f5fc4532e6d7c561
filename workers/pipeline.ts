/**
 * The worker entry: a thin dispatcher from task messages to the pure core.
 * Results go back with their typed arrays transferred, not copied.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { encodeBatch } from '../src/sinks/encode.js';
import { chunkProcessor, type ChunkProcessor } from '../src/transform/chunk.js';
import type { ChunkContext, ChunkResult, EncodeResult, WorkerTask } from '../src/types.js';

// Rule tables and the patient-key cache survive between chunks of one file.
let cached: { id: string; ctx: ChunkContext; run: ChunkProcessor } | null = null;

function processorFor(ctx: ChunkContext): ChunkProcessor {
  const id = JSON.stringify([ctx.dataset, ctx.index, ctx.columnCount, ctx.asOfDay, ctx.period]) + ctx.key;
  if (cached?.id !== id) cached = { id, ctx, run: chunkProcessor(ctx) };
  return cached.run;
}

function buffersOf(r: ChunkResult | EncodeResult): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  const add = (a: ArrayBufferView) => {
    if (a.byteLength > 0) seen.add(a.buffer as ArrayBuffer);
  };
  if (r.kind === 'chunk-result') {
    add(r.bytes);
    for (const b of r.blocks) {
      for (const a of [b.day, b.code, b.value, b.ref, b.srcValueEnd, b.hash, b.pos]) add(a);
    }
  } else {
    add(r.bytes);
    for (const s of r.sketches) add(s.patients);
  }
  return [...seen];
}

/**
 * Fault injection for the tests (test/faults.test.ts): HCP_FAULT_CHUNK=<seq>
 * ends this worker thread abruptly on the first attempt of that chunk;
 * HCP_FAULT_CHUNK=<seq>:always on every attempt.
 */
const fault = /^(\d+)(:always)?$/.exec(process.env.HCP_FAULT_CHUNK ?? '');

export default function run(task: WorkerTask) {
  if (fault && task.kind === 'chunk' && task.seq === Number(fault[1]) && (fault[2] || task.attempt === 0)) process.exit(70);
  const result = task.kind === 'chunk' ? processorFor(task.ctx)(task.bytes, task.seq) : encodeBatch(task);
  return move({
    get [transferableSymbol]() {
      return buffersOf(result);
    },
    get [valueSymbol]() {
      return result;
    },
  } as never);
}
