/**
 * The worker pool: Piscina running workers/pipeline.js. A task that fails
 * (a worker crash, or an exception) is retried once; a second failure fails
 * the run cleanly (HCP_ERR_WORKER), leaving the previous output in place. A
 * task whose data went to the worker for good (`once`: transferred buffers
 * nobody kept) cannot be resent, so its first failure fails the run the same way.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { PipelineError } from './errors.js';
import type { WorkerResult, WorkerTask } from './types.js';

const WORKER = fileURLToPath(new URL('../workers/pipeline.js', import.meta.url));

export interface Pool {
  run<R extends WorkerResult>(make: (attempt: number) => { task: WorkerTask; transfer?: ArrayBuffer[]; once?: boolean }): Promise<R>;
  readonly threads: number;
  readonly queueSize: number;
  readonly utilization: number;
  destroy(): Promise<void>;
}

/**
 * @param onError told of a worker that failed while it held no task (its
 * task already settled, or between tasks): Piscina reports that as an
 * 'error' event on the pool, which, unheard, is an uncaught exception — the
 * process would die with exit 1 and no summary instead of failing the run
 * cleanly. A failure that matters rejects its task (retried below).
 */
export function createPool(threads: number, onError: (e: unknown) => void): Pool {
  const piscina = new Piscina({ filename: WORKER, minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
  piscina.on('error', onError);
  return {
    threads,
    get queueSize() {
      return piscina.queueSize;
    },
    get utilization() {
      return piscina.utilization;
    },
    async run<R extends WorkerResult>(make: (attempt: number) => { task: WorkerTask; transfer?: ArrayBuffer[]; once?: boolean }): Promise<R> {
      let first: unknown;
      let kind = '';
      let once = false;
      for (let attempt = 0; attempt < 2 && !once; attempt++) {
        const made = make(attempt);
        kind = made.task.kind;
        once = made.once ?? false;
        try {
          return (await piscina.run(made.task, { transferList: made.transfer })) as R;
        } catch (e) {
          first ??= e;
        }
      }
      const why = first instanceof Error ? first.message : String(first);
      if (once) throw new PipelineError('HCP_ERR_WORKER', `A worker failed while it held a batch's rows (${kind} task; they cannot be resent): ${why}`);
      throw new PipelineError('HCP_ERR_WORKER', `A worker failed twice on the same ${kind} task: ${why}`);
    },
    destroy: () => piscina.destroy(),
  };
}
