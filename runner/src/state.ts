// The small state file next to the config: ids of commands already executed (so a restart does
// not run them again) and acks not yet delivered. Commands are recorded *before* they run:
// at most once, never twice (a crash mid-command leaves it acked but not done, and the server
// sees no `started` event for it).
import fs from 'node:fs';
import { z } from 'zod';
import { writePrivateJson } from './config.ts';
import type { Logger } from './log.ts';

/** How many executed ids are remembered; the server never resends ids this old. */
export const MAX_REMEMBERED = 1000;

const StateSchema = z.object({
  node_id: z.string(),
  executed: z.array(z.string()),
  pending_acks: z.array(z.string()),
});
type StateFile = z.infer<typeof StateSchema>;

export class CommandState {
  private readonly executed: string[];
  private readonly executedSet: Set<string>;
  private readonly pending: string[];
  private saveFailed = false;
  private readonly file: string | null;
  private readonly nodeId: string;
  private readonly log: Logger | undefined;

  private constructor(file: string | null, nodeId: string, data: Pick<StateFile, 'executed' | 'pending_acks'>, log?: Logger) {
    this.file = file;
    this.nodeId = nodeId;
    this.log = log;
    this.executed = data.executed.slice(-MAX_REMEMBERED);
    this.executedSet = new Set(this.executed);
    this.pending = [...new Set(data.pending_acks)];
  }

  /** Loads the state for `nodeId`; a missing, unreadable or other node's file starts empty (with a warning). */
  static load(file: string | null, nodeId: string, log?: Logger): CommandState {
    const empty = { executed: [], pending_acks: [] };
    if (!file) return new CommandState(null, nodeId, empty, log);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn(`cannot read state file ${file} (${(err as Error).message}); starting empty`);
      return new CommandState(file, nodeId, empty, log);
    }
    try {
      const data = StateSchema.parse(JSON.parse(text));
      if (data.node_id !== nodeId) return new CommandState(file, nodeId, empty, log);
      return new CommandState(file, nodeId, data, log);
    } catch {
      log?.warn(`state file ${file} is corrupt; starting empty`);
      return new CommandState(file, nodeId, empty, log);
    }
  }

  /** Starts a fresh state file (after a join: new node, new command ids). */
  static reset(file: string, nodeId: string): CommandState {
    const state = new CommandState(file, nodeId, { executed: [], pending_acks: [] });
    state.save();
    return state;
  }

  has(id: string): boolean {
    return this.executedSet.has(id);
  }

  /** Records `id` as executed and to be acked; persisted before the command runs. */
  record(id: string): void {
    if (this.executedSet.has(id)) return;
    this.executed.push(id);
    this.executedSet.add(id);
    while (this.executed.length > MAX_REMEMBERED) this.executedSet.delete(this.executed.shift()!);
    this.pending.push(id);
    this.save();
  }

  /** Re-acks an id (the server sent it again, so our ack was lost). */
  ackAgain(id: string): void {
    if (this.pending.includes(id)) return;
    this.pending.push(id);
    this.save();
  }

  /** Acks for the next heartbeat (at most `max`). */
  pendingAcks(max = 100): string[] {
    return this.pending.slice(0, max);
  }

  /** The server accepted a heartbeat carrying these acks. */
  acknowledged(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const done = new Set(ids);
    const left = this.pending.filter((id) => !done.has(id));
    this.pending.splice(0, this.pending.length, ...left);
    this.save();
  }

  private save(): void {
    if (!this.file) return;
    try {
      writePrivateJson(this.file, { node_id: this.nodeId, executed: this.executed, pending_acks: this.pending } satisfies StateFile);
      this.saveFailed = false;
    } catch (err) {
      // Keep running on a full or read-only disk: the ids stay in memory for this process.
      if (!this.saveFailed) this.log?.warn(`${(err as Error).message}; executed command ids are kept in memory only`);
      this.saveFailed = true;
    }
  }
}
