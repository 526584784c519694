// queueMicrotask for this isolate, as a plain promise reaction.
//
// workerd's own queueMicrotask wraps every callback in a new native function object. That
// wrapper, and everything the callback's closure reaches, is released only by a major GC, so
// it ends up in old space. The libSQL client calls queueMicrotask once per queued protocol
// request (a buy's hold batch queues seven), which made it the largest single source of
// old-space garbage per order, and so of how often the stop-the-world major GC comes
// (docs/capacity.md, "Orders").
//
// Same contract: callbacks run in the order queued, after the current task and before any
// timer; a non-function is a TypeError; a callback that throws is logged as an error and
// does not stop the ones after it.
import { log } from './http/log.ts';

// The Workers types declare both `() => void` and `Function`.
type Callback = () => void;

export function promiseMicrotasks(report: (error: unknown) => void): (callback: Callback | Function) => void {
  const resolved = Promise.resolve();
  return function queueMicrotask(callback: Callback | Function): void {
    if (typeof callback !== 'function') throw new TypeError('queueMicrotask: the callback must be a function');
    void resolved.then(() => {
      try {
        (callback as Callback)();
      } catch (error) {
        report(error);
      }
    });
  };
}

// Installed when this module is evaluated, which src/index.ts makes the first thing it does:
// libraries read queueMicrotask once, when they load.
globalThis.queueMicrotask = promiseMicrotasks((error) =>
  log('error', 'uncaught error in a microtask', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
);
