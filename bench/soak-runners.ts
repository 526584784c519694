// Simulated runners for the soak, speaking the runner's wire contract (src/contracts/runner.ts):
// each node heartbeats on its own open-loop timer carrying the acks of the commands it got;
// start_lease → `started`, then two log lines per lease every third beat (POST …/logs) and
// `exited` at the lease's end (its paid end, or a later one after extend_lease); stop_lease → listed
// `stopped` once, then dropped. Challenges are answered as gridlease-runner answers them
// (local/sim-challenge.ts): a node whose challenge goes unanswered fails it and may not sell.
import type { Challenge } from '../src/contracts/inspections.ts';
import { generateNodeKey, type NodeKey } from '../runner/src/identity.ts';
import { answerChallenge } from '../local/sim-challenge.ts';
import type { SoakClient } from './soak-http.ts';
import { h100Machine } from './support.ts';

export interface Book {
  region: string;
  gpuModel: string;
  /** The name nvidia-smi reports for this model, so the catalog maps it. */
  smiName: string;
  /** Mid price, cents per GPU-hour; drifts. */
  midCents: number;
  startCents: number;
}

interface SimLease {
  state: 'starting' | 'running' | 'stopped';
  /** Wall ms the workload stops by itself: its paid end, moved by extend_lease. */
  endsAt: number;
  durationMs: number;
  logSeq: number;
}

export interface SimNode {
  nodeId: string;
  token: string;
  book: Book;
  gpus: number;
  bootId: string;
  seq: number;
  leases: Map<string, SimLease>;
  acks: Set<string>;
  handled: Set<string>;
  busy: boolean;
  timer?: NodeJS.Timeout;
  key: NodeKey;
  gpuUuids: string[];
}

export interface RunnerCounts {
  heartbeats: number;
  skipped: number;
  starts: number;
  exits: number;
  stops: number;
  extends: number;
  logLines: number;
  challenges: number;
  challengesPassed: number;
}

export class Runners {
  readonly nodes: SimNode[] = [];
  readonly counts: RunnerCounts = { heartbeats: 0, skipped: 0, starts: 0, exits: 0, stops: 0, extends: 0, logLines: 0, challenges: 0, challengesPassed: 0 };
  private stopped = false;

  private readonly http: SoakClient;
  private readonly intervalMs: number;

  constructor(http: SoakClient, intervalMs: number) {
    this.http = http;
    this.intervalMs = intervalMs;
  }

  async register(providerKey: string, book: Book, hostname: string, gpus: number): Promise<SimNode> {
    const jt = await this.http.call('setup', 'POST', '/v1/nodes/join-tokens', { auth: providerKey });
    if (jt.status !== 201) throw new Error(`join token: ${jt.status} ${JSON.stringify(jt.body)}`);
    const machine = h100Machine(hostname, gpus);
    for (const g of machine.gpus) g.name = book.smiName;
    const key = generateNodeKey();
    const body = { join_token: jt.body.join_token, region: book.region, machine, public_key: key.publicKey };
    const reg = await this.http.call('setup', 'POST', '/v1/runner/register', { body });
    if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
    const node: SimNode = { nodeId: reg.body.node_id, token: reg.body.node_token, book, gpus, bootId: crypto.randomUUID(), seq: 0, leases: new Map(), acks: new Set(), handled: new Set(), busy: false, key, gpuUuids: machine.gpus.map((g) => g.uuid) };
    this.nodes.push(node);
    return node;
  }

  /** Every node on its own timer, phases spread over one interval. */
  start(): void {
    const t0 = performance.now();
    this.nodes.forEach((n, i) => {
      const first = t0 + (i / this.nodes.length) * this.intervalMs;
      let k = 0;
      const tick = () => {
        if (this.stopped) return;
        if (n.busy) this.counts.skipped++;
        else void this.beat(n);
        k++;
        n.timer = setTimeout(tick, Math.max(0, first + k * this.intervalMs - performance.now()));
      };
      n.timer = setTimeout(tick, Math.max(0, first - performance.now()));
    });
  }

  stop(): void {
    this.stopped = true;
    for (const n of this.nodes) clearTimeout(n.timer);
  }

  private async beat(n: SimNode): Promise<void> {
    n.busy = true;
    try {
      const now = Date.now();
      for (const [id, l] of n.leases) if (l.state === 'running' && l.endsAt <= now) await this.exited(n, id);
      const listed = [...n.leases].map(([lease_id, l]) => ({ lease_id, state: l.state }));
      const acks = [...n.acks].slice(0, 100);
      const body = {
        node_id: n.nodeId,
        boot_id: n.bootId,
        seq: n.seq++,
        sent_at: new Date().toISOString(),
        draining: false,
        gpus: Array.from({ length: n.gpus }, (_, index) => ({ index, utilization_pct: 90, memory_used_mib: 60_000, temperature_c: 65, power_w: 600 })),
        leases: listed,
        acks,
      };
      // 429: less than HEARTBEAT_MIN_INTERVAL_S after the previous one (that one's reply was slow).
      const r = await this.http.call('POST /v1/runner/heartbeats', 'POST', '/v1/runner/heartbeats', { auth: n.token, body });
      if (r.status === 202) this.handle(n, r.body, acks, listed);
      // Workloads' output goes out apart from the heartbeat, every third beat (a runner's log
      // shipper batches lines for a few seconds).
      if (n.seq % 3 === 0) {
        for (const [id, l] of n.leases) {
          if (l.state === 'running') await this.say(n, id, l, [0, 1].map((i) => `step ${l.logSeq + i}: ${900 + Math.floor(Math.random() * 500)} tokens/s, loss ${(2 + Math.random()).toFixed(3)}`));
        }
      }
    } catch {
      // counted by the client; the next beat tries again
    } finally {
      n.busy = false;
    }
  }

  private handle(n: SimNode, reply: any, acks: string[], listed: Array<{ lease_id: string; state: string }>): void {
    this.counts.heartbeats++;
    if (!reply.accepted) return;
    for (const id of acks) n.acks.delete(id);
    for (const l of listed) if (l.state === 'stopped') n.leases.delete(l.lease_id);
    for (const cmd of reply.commands as Array<{ id: string; type: string; lease_id?: string; duration_s?: number; ends_at?: string }>) {
      n.acks.add(cmd.id);
      if (n.handled.has(cmd.id)) continue;
      n.handled.add(cmd.id);
      if (cmd.type === 'start_lease' && cmd.lease_id) {
        const durationMs = (cmd.duration_s ?? 60) * 1000;
        n.leases.set(cmd.lease_id, { state: 'starting', endsAt: Date.parse(cmd.ends_at!), durationMs, logSeq: 0 });
        void this.started(n, cmd.lease_id);
      } else if (cmd.type === 'stop_lease' && cmd.lease_id && n.leases.has(cmd.lease_id)) {
        n.leases.get(cmd.lease_id)!.state = 'stopped';
        this.counts.stops++;
      } else if (cmd.type === 'extend_lease' && cmd.lease_id && n.leases.has(cmd.lease_id)) {
        n.leases.get(cmd.lease_id)!.endsAt = Date.parse(cmd.ends_at!);
        this.counts.extends++;
      } else if (cmd.type === 'challenge') {
        void this.answer(n, (cmd as unknown as { challenge: Challenge }).challenge);
      }
    }
  }

  private async answer(n: SimNode, challenge: Challenge): Promise<void> {
    this.counts.challenges++;
    const post = async (path: string, body: unknown, token: string) => {
      const route = `POST /v1/runner/challenges/{id}/${path.split('/').at(-1)}`;
      const r = await this.http.call(route, 'POST', path, { auth: token, body });
      if (r.status >= 300) throw new Error(`${route}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    try {
      const outcome = await answerChallenge({ id: n.nodeId, token: n.token, privateKey: n.key.privateKey, gpuUuids: n.gpuUuids }, challenge, post);
      if (outcome.outcome === 'passed') this.counts.challengesPassed++;
    } catch {
      // Counted by the client under its route; a failed answer shows as refused sells.
    }
  }

  private async started(n: SimNode, leaseId: string): Promise<void> {
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      try {
        const r = await this.http.call('POST /v1/runner/leases/{id}/events started', 'POST', `/v1/runner/leases/${leaseId}/events`, {
          auth: n.token,
          body: { type: 'started', at: new Date().toISOString() },
        });
        if (r.status === 202) {
          const l = n.leases.get(leaseId);
          if (l?.state === 'starting') {
            l.state = 'running';
            // The runner stops the workload after its paid duration, or at ends_at if sooner.
            l.endsAt = Math.min(l.endsAt, Date.now() + l.durationMs);
            await this.say(n, leaseId, l, ['pulling image', 'loading weights onto the GPU', 'serving on :8888']);
          }
          this.counts.starts++;
          return;
        }
      } catch {
        // counted; retried
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private async exited(n: SimNode, leaseId: string): Promise<void> {
    const r = await this.http.call('POST /v1/runner/leases/{id}/events exited', 'POST', `/v1/runner/leases/${leaseId}/events`, {
      auth: n.token,
      body: { type: 'exited', at: new Date().toISOString(), exit_code: 0 },
    });
    if (r.status === 202) {
      n.leases.delete(leaseId);
      this.counts.exits++;
    }
  }

  private async say(n: SimNode, leaseId: string, l: SimLease, texts: string[]): Promise<void> {
    const at = new Date().toISOString();
    const lines = texts.map((text, i) => ({ seq: l.logSeq + i, at, stream: 'stdout', text }));
    // 409: the lease ended more than LOG_LATE_S ago (a stop the runner has not seen yet).
    const r = await this.http.call('POST /v1/runner/leases/{id}/logs', 'POST', `/v1/runner/leases/${leaseId}/logs`, { auth: n.token, body: { lines }, expect: [409] });
    if (r.status === 200) {
      const next = r.body.next_seq as number;
      this.counts.logLines += Math.max(0, next - l.logSeq);
      l.logSeq = next;
    }
  }
}
