// Collector: one per region × shard. Takes heartbeats (in memory, no storage write per
// heartbeat), answers each with the node's pending commands, and every few seconds flushes
// one batch through the queue. Its alarm, not a request, notices nodes that went silent.
//
// Storage (DO SQLite): `nodes` (last accepted state per node, written at flush), `commands`
// (the per-node mailbox, until acknowledged), `outbox` (flushed batches not yet accepted by
// the queue; retried at the next alarm), `meta` (region, shard, flush counter, epoch).
import { DurableObject } from 'cloudflare:workers';
import type { Command, HeartbeatRequest } from '../contracts/runner.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import { buildBatch, chunkPending, judgeHeartbeat, overdue, recordHeartbeat, retireBoot, RETIRED_BOOTS, type NodeSeen, type PendingNode } from '../heartbeats/accumulator.ts';
import { heartbeatConfig } from '../heartbeats/config.ts';
import { queueTransport } from '../queue/transport.ts';

export const HEARTBEAT_CALLBACK_PATH = '/internal/queue/heartbeats';
/** Nodes per queue message, keeping each message well under QStash's size limit. */
const NODES_PER_MESSAGE = 1_000;
/** Per-GPU minute roll-ups per message: about 130 bytes of JSON each, so about 0.5 MB. */
const GPU_MINUTES_PER_MESSAGE = 4_000;

export type HeartbeatOutcome =
  | { status: 'accepted' | 'ignored'; commands: Command[]; nextIntervalS: number }
  | { status: 'too_fast'; retryAfterMs: number }
  | { status: 'revoked' };

/** A node's stored retired boots; anything but a list of strings (a row from before layout 2: null) is none. */
function retiredBootsOf(stored: string | null): string[] {
  if (!stored) return [];
  try {
    const v: unknown = JSON.parse(stored);
    return Array.isArray(v) ? v.filter((b): b is string => typeof b === 'string').slice(-RETIRED_BOOTS) : [];
  } catch {
    return [];
  }
}

export class Collector extends DurableObject<Bindings> {
  private readonly nodes = new Map<string, NodeSeen>();
  private pending = new Map<string, PendingNode>();
  private region = '';
  private shard = 0;
  private flushes = 0;
  /**
   * Random, kept in storage: batch ids are `region:shard:epoch:flush`, and the receiver applies
   * each id once, so a Collector starting over (storage lost, or another environment on the same
   * database) must not reuse ids its earlier life already sent.
   */
  private epoch = '';
  /** Whether an alarm is set; kept in memory so a heartbeat never reads storage for it. */
  private alarmSet = false;
  /** Nodes with commands waiting, so a heartbeat with an empty mailbox skips the query. */
  private readonly withMail = new Set<string>();
  private readonly config;
  private readonly sql;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.config = heartbeatConfig(env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY, token_version INTEGER NOT NULL, boot_id TEXT,
        last_seq INTEGER NOT NULL, last_seen INTEGER, draining INTEGER NOT NULL, reported_offline INTEGER NOT NULL)`);
      this.sql.exec('CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, node_id TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL)');
      this.sql.exec('CREATE INDEX IF NOT EXISTS commands_node ON commands (node_id, created_at)');
      this.sql.exec('CREATE TABLE IF NOT EXISTS outbox (batch_id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL)');
      this.sql.exec('CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
      // Layout 2: each node's retired boots (a JSON array), so a late heartbeat of a boot the
      // node has left is not counted again, across restarts of this object too.
      if (this.sql.exec("SELECT 1 FROM meta WHERE k = 'layout'").toArray().length === 0) {
        ctx.storage.transactionSync(() => {
          this.sql.exec('ALTER TABLE nodes ADD COLUMN retired_boots TEXT');
          this.sql.exec("INSERT INTO meta (k, v) VALUES ('layout', '2')");
        });
      }
      for (const r of this.sql.exec<{ node_id: string; token_version: number; boot_id: string | null; retired_boots: string | null; last_seq: number; last_seen: number | null; draining: number; reported_offline: number }>('SELECT * FROM nodes')) {
        this.nodes.set(r.node_id, {
          tokenVersion: r.token_version,
          bootId: r.boot_id,
          retiredBoots: retiredBootsOf(r.retired_boots),
          lastSeq: r.last_seq,
          lastSeenMs: r.last_seen,
          draining: r.draining === 1,
          reportedOffline: r.reported_offline === 1,
        });
      }
      for (const r of this.sql.exec<{ node_id: string }>('SELECT DISTINCT node_id FROM commands')) this.withMail.add(r.node_id);
      this.alarmSet = (await ctx.storage.getAlarm()) !== null;
      const meta = new Map(this.sql.exec<{ k: string; v: string }>('SELECT k, v FROM meta').toArray().map((r) => [r.k, r.v]));
      this.region = meta.get('region') ?? '';
      this.shard = Number(meta.get('shard') ?? 0);
      this.flushes = Number(meta.get('flushes') ?? 0);
      this.epoch = meta.get('epoch') ?? '';
      if (!this.epoch) {
        this.epoch = crypto.randomUUID().replaceAll('-', '').slice(0, 16);
        this.sql.exec("INSERT INTO meta (k, v) VALUES ('epoch', ?)", this.epoch);
      }
    });
  }

  private identify(region: string, shard: number): void {
    if (this.region === region && this.shard === shard) return;
    this.region = region;
    this.shard = shard;
    this.sql.exec("INSERT INTO meta (k, v) VALUES ('region', ?), ('shard', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", region, String(shard));
  }

  /** The node's token version as the database knows it, for a node new to this shard. */
  private async knownNode(nodeId: string): Promise<NodeSeen | null> {
    const rs = await connection(this.env).client.execute({ sql: 'SELECT token_version, status FROM nodes WHERE id = ?', args: [nodeId] });
    const row = rs.rows[0];
    if (!row || row.status === 'revoked') return null;
    return { tokenVersion: Number(row.token_version), bootId: null, retiredBoots: [], lastSeq: -1, lastSeenMs: null, draining: false, reportedOffline: false };
  }

  async heartbeat(input: { region: string; shard: number; tokenVersion: number; hb: HeartbeatRequest }): Promise<HeartbeatOutcome> {
    const now = Date.now();
    const { hb } = input;
    this.identify(input.region, input.shard);
    let seen = this.nodes.get(hb.node_id);
    if (!seen) {
      const known = await this.knownNode(hb.node_id);
      if (!known) return { status: 'revoked' };
      seen = this.nodes.get(hb.node_id) ?? known;
      this.nodes.set(hb.node_id, seen);
    }
    if (input.tokenVersion < seen.tokenVersion) return { status: 'revoked' };
    // A newer version than we knew means the node re-registered; its token is ours, so trust it.
    if (input.tokenVersion > seen.tokenVersion) {
      seen.tokenVersion = input.tokenVersion;
      retireBoot(seen);
      seen.bootId = null;
      seen.lastSeq = -1;
    }

    const verdict = judgeHeartbeat(seen, hb, now, this.config.policy);
    if (verdict.kind === 'too_fast') return { status: 'too_fast', retryAfterMs: verdict.retryAfterMs };
    if (verdict.kind === 'accept') {
      this.pending.set(hb.node_id, recordHeartbeat(seen, this.pending.get(hb.node_id), hb, now, this.config.policy));
      if (hb.acks.length > 0 && this.withMail.has(hb.node_id)) {
        this.sql.exec(`DELETE FROM commands WHERE node_id = ? AND id IN (${hb.acks.map(() => '?').join(',')})`, hb.node_id, ...hb.acks);
      }
      await this.ensureAlarm(now);
    }
    const commands = this.withMail.has(hb.node_id) ? this.mailbox(hb.node_id, 32) : [];
    if (this.withMail.has(hb.node_id) && commands.length === 0) this.withMail.delete(hb.node_id);
    return { status: verdict.kind === 'accept' ? 'accepted' : 'ignored', commands, nextIntervalS: this.config.intervalS };
  }

  /** Puts a command in a node's mailbox; it rides on heartbeat replies until acknowledged. */
  async enqueueCommand(nodeId: string, command: Command): Promise<void> {
    this.sql.exec('INSERT INTO commands (id, node_id, body, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING', command.id, nodeId, JSON.stringify(command), Date.now());
    this.withMail.add(nodeId);
  }

  async pendingCommands(nodeId: string): Promise<Command[]> {
    return this.mailbox(nodeId, 1_000);
  }

  private mailbox(nodeId: string, limit: number): Command[] {
    return this.sql
      .exec<{ body: string }>('SELECT body FROM commands WHERE node_id = ? ORDER BY created_at, id LIMIT ?', nodeId, limit)
      .toArray()
      .map((r) => JSON.parse(r.body) as Command);
  }

  /** Makes tokens older than `version` stop working at once (re-registration, revocation). */
  async revoke(nodeId: string, version: number): Promise<void> {
    const seen = this.nodes.get(nodeId) ?? { tokenVersion: version, bootId: null, retiredBoots: [], lastSeq: -1, lastSeenMs: null, draining: false, reportedOffline: true };
    seen.tokenVersion = Math.max(seen.tokenVersion, version);
    this.nodes.set(nodeId, seen);
    this.persistNode(nodeId, seen);
  }

  private persistNode(nodeId: string, s: NodeSeen): void {
    this.sql.exec(
      `INSERT INTO nodes (node_id, token_version, boot_id, retired_boots, last_seq, last_seen, draining, reported_offline) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET token_version = excluded.token_version, boot_id = excluded.boot_id, retired_boots = excluded.retired_boots,
         last_seq = excluded.last_seq, last_seen = excluded.last_seen, draining = excluded.draining, reported_offline = excluded.reported_offline`,
      nodeId, s.tokenVersion, s.bootId, JSON.stringify(s.retiredBoots), s.lastSeq, s.lastSeenMs, s.draining ? 1 : 0, s.reportedOffline ? 1 : 0,
    );
  }

  private async ensureAlarm(now: number): Promise<void> {
    if (this.alarmSet) return;
    await this.ctx.storage.setAlarm(now + this.config.flushMs);
    this.alarmSet = true;
  }

  override async alarm(): Promise<void> {
    this.alarmSet = false;
    const now = Date.now();
    const offline = overdue(this.nodes, now, this.config.graceMs);
    for (const o of offline) this.nodes.get(o.node_id)!.reportedOffline = true;

    if (this.pending.size > 0 || offline.length > 0) {
      const pending = [...this.pending];
      this.pending = new Map();
      // Persist what the batch reports before sending it: the outbox survives eviction.
      const chunks = chunkPending(pending, NODES_PER_MESSAGE, GPU_MINUTES_PER_MESSAGE);
      // Offline reports alone still make one message.
      if (chunks.length === 0) chunks.push([]);
      for (const [i, chunk] of chunks.entries()) {
        this.flushes += 1;
        const batchId = `${this.region}:${this.shard}:${this.epoch}:${this.flushes}`;
        const batch = buildBatch(batchId, this.region, this.shard, now, new Map(chunk), i === 0 ? offline : []);
        this.sql.exec('INSERT INTO outbox (batch_id, body, created_at) VALUES (?, ?, ?)', batchId, JSON.stringify(batch), now);
      }
      for (const [id] of pending) this.persistNode(id, this.nodes.get(id)!);
      for (const o of offline) this.persistNode(o.node_id, this.nodes.get(o.node_id)!);
      this.sql.exec("INSERT INTO meta (k, v) VALUES ('flushes', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", String(this.flushes));
    }

    await this.drainOutbox();

    // Keep ticking while any node may still go silent, or a batch waits to be sent.
    const watching = [...this.nodes.values()].some((n) => !n.reportedOffline && n.lastSeenMs !== null);
    const waiting = this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM outbox').one().n > 0;
    if (watching || waiting || this.pending.size > 0) {
      await this.ctx.storage.setAlarm(Date.now() + this.config.flushMs);
      this.alarmSet = true;
    }
  }

  private async drainOutbox(): Promise<void> {
    const transport = queueTransport(this.env);
    for (const row of this.sql.exec<{ batch_id: string; body: string }>('SELECT batch_id, body FROM outbox ORDER BY created_at, batch_id LIMIT 20').toArray()) {
      try {
        await transport.publish({ path: HEARTBEAT_CALLBACK_PATH, body: JSON.parse(row.body), deduplicationId: row.batch_id.replaceAll(':', '_') });
        this.sql.exec('DELETE FROM outbox WHERE batch_id = ?', row.batch_id);
      } catch (err) {
        log('warn', 'heartbeat batch not sent; retrying at the next flush', { batch_id: row.batch_id, error: String(err) });
        return;
      }
    }
  }
}
