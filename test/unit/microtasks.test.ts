import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// Taken before the module is loaded: loading it replaces the global.
const nativeQueueMicrotask = globalThis.queueMicrotask;
let promiseMicrotasks: typeof import('../../src/microtasks.ts').promiseMicrotasks;
beforeAll(async () => {
  ({ promiseMicrotasks } = await import('../../src/microtasks.ts'));
});
afterAll(() => {
  globalThis.queueMicrotask = nativeQueueMicrotask;
});

describe('promiseMicrotasks', () => {
  it('runs callbacks in the order queued, after the current task and before any timer', async () => {
    const queue = promiseMicrotasks(() => {});
    const seen: string[] = [];
    const timer = new Promise<void>((resolve) => setTimeout(() => (seen.push('timer'), resolve()), 0));
    queue(() => seen.push('a'));
    queue(() => {
      seen.push('b');
      queue(() => seen.push('d'));
    });
    queue(() => seen.push('c'));
    seen.push('sync');
    await timer;
    expect(seen).toEqual(['sync', 'a', 'b', 'c', 'd', 'timer']);
  });

  it('reports a callback that throws and still runs the ones after it', async () => {
    const reported: unknown[] = [];
    const queue = promiseMicrotasks((error) => reported.push(error));
    const seen: number[] = [];
    const boom = new Error('boom');
    queue(() => seen.push(1));
    queue(() => {
      throw boom;
    });
    queue(() => seen.push(3));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(seen).toEqual([1, 3]);
    expect(reported).toEqual([boom]);
  });

  it('refuses a callback that is not a function, as the standard one does', () => {
    const queue = promiseMicrotasks(() => {});
    expect(() => queue('not a function' as unknown as () => void)).toThrow(TypeError);
    expect(() => nativeQueueMicrotask('not a function' as unknown as () => void)).toThrow(TypeError);
  });

  it('is installed as the global queueMicrotask when the module loads', async () => {
    globalThis.queueMicrotask = nativeQueueMicrotask;
    // A fresh evaluation of the module, as the Worker's entry point does first thing.
    vi.resetModules();
    await import('../../src/microtasks.ts');
    expect(globalThis.queueMicrotask).not.toBe(nativeQueueMicrotask);
    expect(globalThis.queueMicrotask.name).toBe('queueMicrotask');
    const ran = await new Promise<boolean>((resolve) => globalThis.queueMicrotask(() => resolve(true)));
    expect(ran).toBe(true);
  });
});
