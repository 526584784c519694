// Lease: one per lease, created by the RegionBook from one fill. It records the terms (renter,
// provider, node, GPU indices, price, duration, asset, workload) and its state, starting in
// `provisioning`, and carries out what a new lease means elsewhere, each step idempotent:
//   1. booked    — the lease row in libSQL, the bid marked filled, and the price improvement
//                  released from the renter's escrow, in one ledger batch;
//   2. commanded — `start_lease` in the node's mailbox (the Collector that takes its heartbeats).
// The book retries `create` through its outbox until it returns, so a lease is created once
// per fill and every step happens exactly once however often it is asked.
import { DurableObject } from 'cloudflare:workers';
import { keyRing, signLeaseToken } from '../auth/tokens.ts';
import type { Command } from '../contracts/runner.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { release } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import type { LeaseTerms } from '../market/orders.ts';
import { collectorFor } from '../nodes/registry.ts';

export const LEASE_STATES = ['provisioning', 'running', 'completed', 'failed', 'cancelled'] as const;
export type LeaseState = (typeof LEASE_STATES)[number];

export interface LeaseRecord {
  terms: LeaseTerms;
  state: LeaseState;
  /** Steps of creation already carried out (see the file comment). */
  booked: boolean;
  commanded: boolean;
  history: Array<{ state: LeaseState; at: number; reason?: string }>;
  updatedAt: number;
}

export function lease(env: Bindings, leaseId: string) {
  return env.LEASE.getByName(leaseId);
}

export class Lease extends DurableObject<Bindings> {
  private record: LeaseRecord | null | undefined;

  private async load(): Promise<LeaseRecord | null> {
    if (this.record === undefined) this.record = (await this.ctx.storage.get<LeaseRecord>('lease')) ?? null;
    return this.record;
  }

  private async save(rec: LeaseRecord): Promise<void> {
    rec.updatedAt = Date.now();
    await this.ctx.storage.put('lease', rec);
    this.record = rec;
  }

  /** Creates the lease once; asking again (a retry) finishes whatever step is left. */
  async create(terms: LeaseTerms): Promise<LeaseRecord> {
    let rec = await this.load();
    if (rec && rec.terms.tradeId !== terms.tradeId) throw new Error(`lease ${terms.leaseId} already belongs to trade ${rec.terms.tradeId}`);
    if (!rec) {
      rec = { terms, state: 'provisioning', booked: false, commanded: false, history: [{ state: 'provisioning', at: terms.createdAt }], updatedAt: 0 };
      await this.save(rec);
    }
    if (!rec.booked) {
      await this.book(rec.terms);
      rec.booked = true;
      await this.save(rec);
    }
    if (!rec.commanded) {
      await this.command(rec.terms);
      rec.commanded = true;
      await this.save(rec);
    }
    return rec;
  }

  async get(): Promise<LeaseRecord | null> {
    return this.load();
  }

  private async book(t: LeaseTerms): Promise<void> {
    const { money } = connection(this.env);
    const statements = [
      {
        sql: `INSERT INTO leases (id, trade_id, bid_id, ask_id, renter_id, provider_id, node_id, region, gpu_model, gpus, gpu_indices, price,
                duration_s, asset, amount, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'provisioning', ?)
              ON CONFLICT (id) DO NOTHING`,
        args: [t.leaseId, t.tradeId, t.bidId, t.askId, t.renterId, t.providerId, t.nodeId, t.region, t.gpuModel, t.gpus, JSON.stringify(t.gpuIndices),
          t.price, t.durationS, t.asset, BigInt(t.amount), t.createdAt],
      },
      { sql: "UPDATE orders SET status = 'filled', closed_at = ? WHERE id = ?", args: [t.createdAt, t.bidId] },
    ];
    const improvement = BigInt(t.improvement);
    if (improvement === 0n) {
      await money.batch(statements, 'write');
      return;
    }
    const rule = release({
      owner: t.renterId,
      asset: t.asset,
      amount: improvement,
      idempotencyKey: `lease:${t.leaseId}:improvement`,
      reference: t.leaseId,
      memo: 'price improvement on fill',
    });
    if (!rule.ok) throw new Error(`lease ${t.leaseId}: improvement release refused: ${rule.problem}`);
    const posted = await postTransaction(money, rule.spec, { alongside: statements, now: t.createdAt });
    if (!posted.ok) throw new Error(`lease ${t.leaseId}: improvement release refused: ${posted.reason}`);
  }

  private async command(t: LeaseTerms): Promise<void> {
    const endsAt = t.createdAt + t.durationS * 1000;
    const token = await signLeaseToken(await keyRing(this.env.JWT_PRIVATE_KEYS), { leaseId: t.leaseId, nodeId: t.nodeId }, {
      issuer: this.env.JWT_ISSUER,
      expiresAt: endsAt + 3_600_000,
      now: Date.now(),
    });
    const command: Command = {
      id: `start_${t.leaseId}`,
      type: 'start_lease',
      lease_id: t.leaseId,
      workload: t.workload,
      gpu_indices: t.gpuIndices,
      ends_at: new Date(endsAt).toISOString(),
      lease_token: token,
    };
    await collectorFor(this.env, t.nodeId, t.region).stub.enqueueCommand(t.nodeId, command);
  }
}
