import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../src/sinks/lock.js';
import { removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

/** The state letter of a process in /proc (R, S, Z…), or null when it is gone. */
const state = (pid: number) => {
  try {
    return /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))![1];
  } catch {
    return null;
  }
};

describe.runIf(process.platform === 'linux')('acquireLock: a lock whose owner is a zombie', () => {
  it('is stale: the owner is dead, only not yet reaped (a SIGKILLed run whose parent has not waited for it)', async () => {
    // `sh` execs into `sleep`, which never waits for the background child: once it exits, it stays a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (b: Buffer) => resolve(b.toString()))));
      for (let i = 0; i < 200 && state(pid) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(state(pid)).toBe('Z');
      const path = join(tempDir(), 'vitals.all.H001.lock');
      writeFileSync(path, String(pid));
      const lock = acquireLock(path, 'the test partition');
      expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
      lock.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('acquireLock: the lock file appears with its pid', () => {
  it('a lock without a pid (empty, or not a number) counts as held: it is never read as a dead owner and taken over', () => {
    for (const text of ['', '\n', 'abc', '0', '-5']) {
      const path = join(tempDir(), 'vitals.all.H001.lock');
      writeFileSync(path, text);
      expect(() => acquireLock(path, 'the test partition'), JSON.stringify(text)).toThrow(/holds no pid/);
      expect(readFileSync(path, 'utf8')).toBe(text);
    }
  });

  it('a new lock holds this process\'s pid, and its scratch file is gone', () => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    const lock = acquireLock(path, 'the test partition');
    expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
    expect(readdirSync(dir)).toEqual(['vitals.all.H001.lock']);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });
});
