import { DurableObject } from 'cloudflare:workers';
import { takeSlot, type SlidingWindow, type WindowDecision } from '../auth/sliding-window.ts';

/**
 * One instance per rate-limit bucket (e.g. `token:email:a@b.c`). Holding the bucket in a
 * Durable Object makes the count exact across every Worker isolate worldwide.
 */
export class RateLimiter extends DurableObject<Env> {
  private window: SlidingWindow | undefined;

  async hit(limit: number, windowMs: number): Promise<WindowDecision> {
    this.window ??= (await this.ctx.storage.get<SlidingWindow>('window')) ?? { hits: [] };
    const decision = takeSlot(this.window, { limit, windowMs, now: Date.now() });
    this.window = decision.window;
    // Not awaited: the output gate holds the reply until the write is durable.
    void this.ctx.storage.put('window', this.window);
    return decision;
  }
}
