// Commands from heartbeat replies. Each id runs once: ids are recorded (memory and state file)
// before the command runs, and acked on the next heartbeat. An id seen again is not run again,
// only acked again (the server resends when our ack was lost).
import { CommandSchema, type Command } from '../../src/contracts/runner.ts';
import type { ChallengeResponder } from './challenges.ts';
import { describeError } from './errors.ts';
import type { LeaseManager } from './leases.ts';
import type { Logger } from './log.ts';
import type { CommandState } from './state.ts';
import { refusal } from './workload.ts';

type Leases = Pick<LeaseManager, 'start' | 'stop' | 'extend' | 'refuse'>;

const KNOWN_TYPES: ReadonlySet<string> = new Set(CommandSchema.options.map((o) => o.shape.type.value));

export class CommandProcessor {
  private readonly state: CommandState;
  private readonly leases: Leases;
  private readonly log: Logger;
  private readonly challenges: Pick<ChallengeResponder, 'answer'>;

  constructor(state: CommandState, leases: Leases, log: Logger, challenges: Pick<ChallengeResponder, 'answer'>) {
    this.state = state;
    this.leases = leases;
    this.log = log;
    this.challenges = challenges;
  }

  /**
   * Runs the commands of one reply, in order, without waiting for workloads to start or challenges
   * to be answered: they go on in the background (the promise of their completion is returned for tests).
   */
  handle(commands: readonly unknown[]): Promise<void> {
    const work: Promise<void>[] = [];
    for (const raw of commands) {
      const id = (raw as { id?: unknown } | null)?.id;
      if (typeof id !== 'string' || id.length === 0 || id.length > 64) {
        this.log.warn('ignored a command without a usable id');
        continue;
      }
      if (this.state.has(id)) {
        this.state.ackAgain(id);
        continue;
      }
      const parsed = CommandSchema.safeParse(raw);
      this.state.record(id);
      if (!parsed.success) {
        const type = (raw as { type?: unknown }).type;
        const issue = parsed.error.issues[0];
        const why = typeof type === 'string' && !KNOWN_TYPES.has(type)
          ? `type "${type}" is not understood by this runner (update it?)`
          : `malformed${issue ? ` (${issue.path.map(String).join('.') || 'command'}: ${issue.message})` : ''}`;
        this.log.warn(`command ${id}: ignored, ${why}`);
        // A start the runner refuses is a failed lease, said at once, not one left to time out.
        const leaseId = (raw as { lease_id?: unknown }).lease_id;
        if (type === 'start_lease' && typeof leaseId === 'string' && leaseId.length > 0 && leaseId.length <= 64 && issue) {
          const reason = issue.path[0] === 'workload' && issue.path.length > 1 ? refusal(issue.path, issue.message) : `malformed start_lease (${issue.path.map(String).join('.')}: ${issue.message})`;
          work.push(this.leases.refuse(leaseId, reason));
        }
        continue;
      }
      work.push(this.run(parsed.data));
    }
    return Promise.all(work).then(() => undefined);
  }

  private async run(cmd: Command): Promise<void> {
    try {
      await this.execute(cmd);
    } catch (err) {
      this.log.error(`command ${cmd.id} (${cmd.type}) failed: ${describeError(err)}`);
    }
  }

  private async execute(cmd: Command): Promise<void> {
    switch (cmd.type) {
      case 'start_lease':
        return this.leases.start(cmd);
      case 'stop_lease':
        return this.leases.stop(cmd.lease_id, cmd.reason || 'stop_lease');
      case 'extend_lease':
        return this.leases.extend(cmd.lease_id, new Date(cmd.ends_at));
      case 'challenge':
        // Acked on the next heartbeat like any command; answered now, to the challenge endpoints.
        this.log.info(`challenge ${cmd.challenge.challenge_id} ${cmd.challenge.kind}: received, answering`);
        return this.challenges.answer(cmd.challenge);
    }
  }
}
