/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** setTimeout caps delays at 2^31-1 ms (~24.8 days); this re-arms until `at`. */
export function setTimer(at: number, fn: () => void, now: () => number = Date.now): { cancel(): void } {
  const MAX = 2_147_483_647;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cancelled = false;
  const arm = () => {
    if (cancelled) return;
    const left = at - now();
    if (left <= 0) return fn();
    timer = setTimeout(arm, Math.min(left, MAX));
  };
  arm();
  return {
    cancel() {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}
