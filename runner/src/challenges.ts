// Answers the platform's challenges (src/contracts/inspections.ts) at once, in the background, so
// the heartbeat loop never waits on them. Identity challenges are cheap and run as they come;
// capacity challenges run one at a time (the solver takes the CPU or the GPUs), with at most one
// waiting behind the running one: more are refused with a log line and the platform expires them.
// Nothing from a challenge reaches a shell or a file path: it is parsed, signed and sent back.
import {
  COMMITMENT_DOMAIN,
  ChallengeSchema,
  IDENTITY_DOMAIN,
  IdentityAnswerSchema,
  commitmentFields,
  identityFields,
  type CapacityChallenge,
  type Challenge,
  type ChallengeOutcome,
  type IdentityChallenge,
} from '../../src/contracts/inspections.ts';
import type { DetectedGpu } from '../../src/contracts/runner.ts';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { ApiError, NetworkError, anySignal, type ApiClient } from './api.ts';
import { Backoff } from './backoff.ts';
import { describeError, oneLine } from './errors.ts';
import { signNodeMessage } from './identity.ts';
import type { ChallengeSolver } from './inspections/solver.ts';
import type { Logger } from './log.ts';
import { sleep as defaultSleep } from './time.ts';

/** Capacity challenges in hand (running + waiting); one more is refused. */
const MAX_CAPACITY_IN_HAND = 2;

export type ChallengeApi = Pick<ApiClient, 'identityAnswer' | 'commitment' | 'openings'>;

export interface ChallengeResponderOptions {
  api: ChallengeApi;
  nodeId: string;
  /** The node key from the config; absent in configs from before node keys (nothing can be signed). */
  privateKey: string | undefined;
  solver: ChallengeSolver;
  /** The GPUs as detected now (nvidia-smi), in index order. */
  gpus: () => Promise<DetectedGpu[]>;
  log: Logger;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

export class ChallengeResponder {
  private readonly o: ChallengeResponderOptions;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly closing = new AbortController();
  private capacityChain: Promise<void> = Promise.resolve();
  private capacityInHand = 0;

  constructor(o: ChallengeResponderOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? defaultSleep;
  }

  get solverName(): string {
    return this.o.solver.name;
  }

  /** Starts answering; the promise settles when this challenge is done with (it never rejects). */
  answer(input: Challenge): Promise<void> {
    const parsed = ChallengeSchema.safeParse(input);
    if (!parsed.success) {
      this.o.log.warn('challenge refused: malformed');
      return Promise.resolve();
    }
    const challenge = parsed.data;
    const run = challenge.kind === 'identity' ? this.identity(challenge) : this.enqueue(challenge);
    return run.catch((err: unknown) => this.o.log.error(`${label(challenge)}: ${describeError(err)}; not answered`));
  }

  /** Stops retries and waits no more for the API (shutdown); work in progress is abandoned. */
  close(): void {
    this.closing.abort();
  }

  private async identity(c: IdentityChallenge): Promise<void> {
    const deadline = Date.parse(c.deadline);
    if (!this.ready(c, deadline)) return;
    const gpus = await this.o.gpus();
    const candidate = {
      challenge_id: c.challenge_id,
      nonce: c.nonce,
      gpu_uuids: gpus.map((g) => g.uuid),
      driver: gpus[0]?.driver ?? '',
      at: new Date(this.now()).toISOString(),
    };
    const answer = IdentityAnswerSchema.safeParse(candidate);
    if (!answer.success) {
      const issue = answer.error.issues[0];
      this.o.log.error(`${label(c)}: the detected GPUs do not fit an answer (${issue?.path.join('.')}: ${issue?.message}); not answered`);
      return;
    }
    const signature = signNodeMessage(this.o.privateKey!, signedMessage(IDENTITY_DOMAIN, identityFields(this.o.nodeId, answer.data)));
    const outcome = await this.send(c, 'answer', deadline, (signal) => this.o.api.identityAnswer(c.challenge_id, { answer: answer.data, signature }, signal));
    if (outcome) this.report(c, outcome);
  }

  private enqueue(c: CapacityChallenge): Promise<void> {
    if (this.capacityInHand >= MAX_CAPACITY_IN_HAND) {
      this.o.log.warn(`${label(c)}: refused, ${this.capacityInHand} capacity challenges already in hand; not answered (the platform expires it)`);
      return Promise.resolve();
    }
    this.capacityInHand++;
    const run = this.capacityChain.then(() => this.capacity(c)).finally(() => this.capacityInHand--);
    this.capacityChain = run.catch(() => undefined);
    return run;
  }

  private async capacity(c: CapacityChallenge): Promise<void> {
    const { log, solver } = this.o;
    const deadline = Date.parse(c.deadline);
    if (!this.ready(c, deadline)) return;
    if (c.n > solver.maxN) {
      log.warn(`${label(c)}: n = ${c.n} is above the ${solver.name} solver's limit of ${solver.maxN}; not answered (the platform expires it)`);
      return;
    }
    const detected = await this.o.gpus().then(
      (gpus) => gpus.length,
      (err: unknown) => (log.warn(`${label(c)}: cannot count this node's GPUs (${describeError(err)})`), null),
    );
    if (detected !== null && detected !== c.gpu_count) {
      log.warn(`${label(c)}: asks for ${c.gpu_count} GPU${c.gpu_count === 1 ? '' : 's'} but this node has ${detected}; answering as asked`);
    }
    const started = this.now();
    const commitment = await solver.commit(c);
    if (this.now() >= deadline) {
      log.warn(`${label(c)}: the commitment took ${seconds(this.now() - started)} and missed the deadline ${c.deadline}; not sent`);
      return;
    }
    const fields = commitmentFields(this.o.nodeId, c, commitment);
    const signature = signNodeMessage(this.o.privateKey!, signedMessage(COMMITMENT_DOMAIN, fields));
    const request = await this.send(c, 'commitment', deadline, (signal) => this.o.api.commitment(c.challenge_id, { commitment, signature }, signal));
    if (!request) return;
    if (request.challenge_id !== c.challenge_id) {
      log.error(`${label(c)}: the API asked for openings of another challenge; not answered`);
      return;
    }
    const openDeadline = Date.parse(request.deadline);
    if (this.now() >= openDeadline) {
      log.warn(`${label(c)}: the opening deadline ${request.deadline} passed before the openings could start; not answered`);
      return;
    }
    const openings = await solver.open(request);
    const outcome = await this.send(c, 'openings', openDeadline, (signal) => this.o.api.openings(c.challenge_id, openings, signal));
    if (outcome) this.report(c, outcome, `committed in ${seconds(this.now() - started)}`);
  }

  /** False (with a log line) when the challenge cannot be worked on at all. */
  private ready(c: Challenge, deadline: number): boolean {
    if (this.closing.signal.aborted) return false;
    if (!Number.isFinite(deadline) || this.now() >= deadline) {
      this.o.log.warn(`${label(c)}: its deadline ${c.deadline} has passed; not worked on`);
      return false;
    }
    if (!this.o.privateKey) {
      this.o.log.warn(`${label(c)}: this node has no node key to sign with; not answered (run \`gridlease-runner join\` again)`);
      return false;
    }
    return true;
  }

  /**
   * One POST, retried with back-off on network errors, 5xx and 429 until `deadline` and no
   * longer; any other refusal (404, 409, 400…) or an unexpected reply is final.
   */
  private async send<T>(c: Challenge, what: string, deadline: number, call: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    const { log } = this.o;
    const backoff = new Backoff({ baseMs: 500, maxMs: 10_000, random: this.o.random });
    for (;;) {
      const left = deadline - this.now();
      if (left <= 0) {
        log.warn(`${label(c)}: ${what} not delivered before the deadline; given up`);
        return undefined;
      }
      try {
        return await call(anySignal(this.closing.signal, AbortSignal.timeout(left)));
      } catch (err) {
        if (this.closing.signal.aborted) {
          log.warn(`${label(c)}: ${what} not delivered (shutting down)`);
          return undefined;
        }
        const why = err instanceof ApiError ? `HTTP ${err.status} ${err.code}: ${err.message}` : describeError(err);
        const retryable = err instanceof NetworkError || (err instanceof ApiError && (err.status >= 500 || err.status === 429));
        if (!retryable) {
          log.error(`${label(c)}: ${what} refused (${why}); not retried`);
          return undefined;
        }
        const delay = Math.max(backoff.next(), err instanceof ApiError ? (err.retryAfterMs ?? 0) : 0);
        if (this.now() + delay >= deadline) {
          log.warn(`${label(c)}: ${what} not delivered (${why}); the deadline comes before the next try, given up`);
          return undefined;
        }
        if (backoff.failures === 1) log.warn(`${label(c)}: ${what} not delivered (${why}); retrying until the deadline`);
        await this.sleep(delay, this.closing.signal);
      }
    }
  }

  private report(c: Challenge, outcome: ChallengeOutcome, detail = ''): void {
    const suffix = detail ? ` (${detail})` : '';
    if (outcome.outcome === 'passed') {
      this.o.log.info(`${label(c)}: passed${suffix}`);
    } else {
      // Reasons come from the API: printable text only, so they cannot drive the terminal.
      const reasons = outcome.reasons.map((r) => oneLine(r.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' '), 200));
      this.o.log.warn(`${label(c)}: failed${suffix}${reasons.length ? `: ${reasons.join('; ')}` : ''}`);
    }
  }
}

const label = (c: Challenge) => `challenge ${c.challenge_id} ${c.kind}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
