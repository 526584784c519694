// npm run bench:matching — our matching engine against the npm package hft-limit-order-book
// on the same seeded workload, in the same process and run: ~80% limit orders around the
// mid price, 10% cancels of resting orders, 10% marketable orders, with the book pre-filled
// to a given depth. Prints orders/s and p99 per order for both, and the ratio (ours / theirs).
// BENCH_OPS (default 200000) orders per run; depths 1,000 and 100,000 resting orders.
import { OrderBook as HftBook } from 'hft-limit-order-book';
import { OrderBook } from '../src/market/engine.ts';

const OPS = Number(process.env.BENCH_OPS ?? 200_000);
const NOW = 1_700_000_000_000;
const FAR = NOW + 86_400_000;

/** mulberry32: small, fast, seeded. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Op =
  | { kind: 'limit'; id: string; side: 'buy' | 'sell'; price: number; size: number }
  | { kind: 'market'; id: string; side: 'buy' | 'sell'; size: number }
  | { kind: 'cancel'; id: string };

/** The same operations for both books. Prices are whole micro-unit ticks around 2,000,000. */
function workload(depth: number, ops: number, seed: number): { prefill: Op[]; ops: Op[] } {
  const r = rng(seed);
  const live: string[] = [];
  let n = 0;
  const limit = (spread: number): Op => {
    const side = r() < 0.5 ? 'buy' : 'sell';
    const offset = Math.floor(r() * spread) + 1;
    const price = 2_000_000 + (side === 'buy' ? -offset : offset) * 1_000;
    const id = `o${++n}`;
    live.push(id);
    return { kind: 'limit', id, side, price, size: 1 + Math.floor(r() * 4) };
  };
  // Pre-fill without crossing: bids below the mid, asks above.
  const prefill = Array.from({ length: depth }, () => limit(Math.max(50, depth / 10)));
  const out: Op[] = [];
  for (let i = 0; i < ops; i++) {
    const x = r();
    if (x < 0.8) {
      // Limit orders mostly rest; a few cross the mid and trade.
      const op = limit(Math.max(50, depth / 10)) as Extract<Op, { kind: 'limit' }>;
      if (r() < 0.1) op.price = 2_000_000 + (op.side === 'buy' ? 1 : -1) * 20_000;
      out.push(op);
    } else if (x < 0.9 && live.length > 0) {
      const j = Math.floor(r() * live.length);
      const id = live[j]!;
      live[j] = live[live.length - 1]!;
      live.pop();
      out.push({ kind: 'cancel', id });
    } else {
      out.push({ kind: 'market', id: `m${++n}`, side: r() < 0.5 ? 'buy' : 'sell', size: 1 + Math.floor(r() * 4) });
    }
  }
  return { prefill, ops: out };
}

interface Adapter {
  apply(op: Op, i: number): void;
}

function ours(): Adapter {
  const book = new OrderBook();
  return {
    apply(op, i) {
      const now = NOW + i;
      if (op.kind === 'cancel') book.cancel(op.id);
      else if (op.kind === 'limit' && op.side === 'buy')
        book.submitBid({ id: op.id, accountId: 'b', gpus: op.size, price: op.price, durationS: 3600, minReliability: 0, verifiedOnly: false, tif: 'gtc', expiresAt: FAR }, now);
      else if (op.kind === 'limit')
        book.submitAsk({ id: op.id, accountId: 's', nodeId: op.id, gpus: op.size, price: op.price, minDurationS: 60, maxDurationS: 86_400, expiresAt: FAR, reliability: 1, verified: true }, now);
      else if (op.side === 'buy')
        book.submitBid({ id: op.id, accountId: 'b', gpus: op.size, price: Number.MAX_SAFE_INTEGER, durationS: 3600, minReliability: 0, verifiedOnly: false, tif: 'ioc', expiresAt: FAR }, now);
      else {
        // A marketable sell: priced through the book; whatever is left is withdrawn at once.
        book.submitAsk({ id: op.id, accountId: 's', nodeId: op.id, gpus: op.size, price: 1, minDurationS: 60, maxDurationS: 86_400, expiresAt: FAR, reliability: 1, verified: true }, now);
        book.cancel(op.id);
      }
    },
  };
}

function theirs(): Adapter {
  const book = new HftBook();
  return {
    apply(op) {
      if (op.kind === 'cancel') book.cancel(op.id);
      else if (op.kind === 'limit') book.limit({ id: op.id, side: op.side as never, size: op.size, price: op.price });
      else book.market({ side: op.side as never, size: op.size });
    },
  };
}

function run(make: () => Adapter, w: { prefill: Op[]; ops: Op[] }) {
  const a = make();
  w.prefill.forEach((op, i) => a.apply(op, i));
  const times = new Float64Array(w.ops.length);
  const started = performance.now();
  for (let i = 0; i < w.ops.length; i++) {
    const t0 = performance.now();
    a.apply(w.ops[i]!, w.prefill.length + i);
    times[i] = performance.now() - t0;
  }
  const elapsed = performance.now() - started;
  times.sort();
  return { opsPerS: w.ops.length / (elapsed / 1000), p99us: times[Math.floor(times.length * 0.99)]! * 1000 };
}

console.log(`\n${OPS} orders per run (80% limit, 10% cancel, 10% marketable), same seeded workload for both\n`);
console.log('| resting orders | engine | orders/s | p99 µs/order | ours ÷ theirs |');
console.log('|---:|---|---:|---:|---:|');
let verdict = true;
for (const depth of [1_000, 100_000]) {
  const w = workload(depth, OPS, 42 + depth);
  // Warm both up on a smaller copy so neither pays for JIT in the measured run.
  run(ours, workload(depth, 20_000, 7));
  run(theirs, workload(depth, 20_000, 7));
  const a = run(ours, w);
  const b = run(theirs, w);
  const ratio = a.opsPerS / b.opsPerS;
  if (depth === 1_000) verdict = ratio >= 1;
  console.log(`| ${depth.toLocaleString('en')} | gridlease | ${Math.round(a.opsPerS).toLocaleString('en')} | ${a.p99us.toFixed(1)} | ${ratio.toFixed(2)}× |`);
  console.log(`| ${depth.toLocaleString('en')} | hft-limit-order-book 7.0.2 | ${Math.round(b.opsPerS).toLocaleString('en')} | ${b.p99us.toFixed(1)} | |`);
}
console.log(`\ngoal (ours ≥ 1.0× the peer at ~1,000 resting orders): ${verdict ? 'met' : 'not met'}`);
