import { DurableObject } from 'cloudflare:workers';
import { takeCount, takeSlot, type SlidingWindow, type WindowCounter, type WindowDecision } from '../auth/sliding-window.ts';

/**
 * One instance per rate-limit bucket (e.g. `token:email:a@b.c`). Holding the bucket in a
 * Durable Object makes the count exact across every Worker isolate worldwide.
 */
export class RateLimiter extends DurableObject<Env> {
  private window: SlidingWindow | undefined;
  private counter: WindowCounter | undefined;

  async hit(limit: number, windowMs: number): Promise<WindowDecision> {
    this.window ??= (await this.ctx.storage.get<SlidingWindow>('window')) ?? { hits: [] };
    const decision = takeSlot(this.window, { limit, windowMs, now: Date.now() });
    this.window = decision.window;
    // Not awaited: the output gate holds the reply until the write is durable.
    void this.ctx.storage.put('window', this.window);
    return decision;
  }

  /** As `hit`, for limits too large for a log (thousands a minute): an approximate sliding window. */
  async count(limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }> {
    this.counter ??= await this.ctx.storage.get<WindowCounter>('counter');
    const decision = takeCount(this.counter, { limit, windowMs, now: Date.now() });
    this.counter = decision.counter;
    if (decision.allowed) void this.ctx.storage.put('counter', this.counter);
    return { allowed: decision.allowed, retryAfterMs: decision.retryAfterMs };
  }
}
