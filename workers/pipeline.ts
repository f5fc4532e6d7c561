/**
 * The worker entry: a thin dispatcher from task messages to the pure core.
 * Results go back with their typed arrays transferred, not copied.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { withTaskCpu } from '../src/cpu.js';
import { resultBuffers } from '../src/merge/recycle.js';
import { encodeBatch } from '../src/sinks/encode.js';
import { ChunkProcessor } from '../src/transform/chunk.js';
import type { ChunkContext, ChunkResult, EncodeResult, WorkerTask } from '../src/types.js';

// V8 compiles typed-array reads without a detached-buffer check until the
// isolate first detaches an ArrayBuffer; that first detach (here, the first
// result transferred back) then deoptimises every function compiled so far,
// and the record loop is compiled again (docs/performance/HISTORY.md). One detach
// now, before any code is hot, keeps that from happening mid-run.
const warm = new ArrayBuffer(8);
structuredClone(warm, { transfer: [warm] });

// Rule tables, interned fields and caches survive between chunks of one pass over a file.
let cached: { id: string; run: ChunkProcessor } | null = null;

function processorFor(ctx: ChunkContext): ChunkProcessor {
  if (cached?.id !== ctx.run) cached = { id: ctx.run, run: new ChunkProcessor(ctx) };
  return cached.run;
}

/**
 * Fault injection for the tests (test/faults.test.ts): HCP_FAULT_CHUNK=<seq>
 * ends this worker thread abruptly on the first attempt of that chunk;
 * HCP_FAULT_CHUNK=<seq>:always on every attempt. HCP_FAULT_ENCODE=<k> ends
 * it on the first attempt of the k-th encode task this thread gets.
 */
const fault = /^(\d+)(:always)?$/.exec(process.env.HCP_FAULT_CHUNK ?? '');
const encodeFault = Number(process.env.HCP_FAULT_ENCODE ?? 0);
let encodes = 0;

export default function run(task: WorkerTask) {
  if (fault && task.kind === 'chunk' && task.seq === Number(fault[1]) && (fault[2] || task.attempt === 0)) process.exit(70);
  if (encodeFault > 0 && task.kind === 'encode' && task.attempt === 0 && ++encodes === encodeFault) process.exit(70);
  // The thread's CPU clock around the task goes back with the result (the run summary's cpu_ms).
  const result = withTaskCpu<ChunkResult | EncodeResult>(() => (task.kind === 'chunk' ? processorFor(task.ctx).run(task.bytes, task.seq, task.dicts, task.spare) : encodeBatch(task)));
  return move({
    get [transferableSymbol]() {
      return resultBuffers(result);
    },
    get [valueSymbol]() {
      return result;
    },
  } as never);
}
