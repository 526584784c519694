// Host ports for workload ports. Each is taken from the runner's range, never one already held
// by a live lease of this runner and never one something else on the machine listens on, so two
// leases asking for the same container port both start. Handed out round-robin: a port just
// freed is not reused at once, so a client of an ended lease does not reach the next renter.
import net from 'node:net';
import { RunnerError } from '../errors.ts';

export interface PortRange {
  first: number;
  last: number;
}

export const DEFAULT_PORT_RANGE: PortRange = { first: 40_000, last: 40_999 };

/** `40000-40999` → the range; throws a one-line message otherwise. */
export function parsePortRange(text: string): PortRange {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const first = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2]) : NaN;
  if (!(first >= 1 && first <= last && last <= 65_535)) throw new RunnerError(`port range "${text}" must look like 40000-40999 (1-65535, first ≤ last)`);
  return { first, last };
}

/** True when a listener could bind the port on every IPv4 and IPv6 address, as docker does. */
export async function portIsFree(port: number): Promise<boolean> {
  for (const host of ['0.0.0.0', '::']) {
    const free = await new Promise<boolean | null>((resolve) => {
      const server = net.createServer();
      server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? false : null));
      server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
    });
    if (free === false) return false; // null: no IPv6 on this machine, nothing to collide with
  }
  return true;
}

export class HostPorts {
  private readonly held = new Set<number>();
  private next: number;
  private readonly range: PortRange;
  private readonly isFree: (port: number) => Promise<boolean>;

  constructor(range: PortRange = DEFAULT_PORT_RANGE, isFree: (port: number) => Promise<boolean> = portIsFree) {
    this.range = range;
    this.isFree = isFree;
    this.next = range.first;
  }

  /** Holds `count` free host ports; throws when the range has too few. */
  async take(count: number): Promise<number[]> {
    const taken: number[] = [];
    const size = this.range.last - this.range.first + 1;
    // Each candidate is held before the await, so concurrent starts never pick the same one.
    for (let tried = 0; taken.length < count && tried < size; tried++) {
      const port = this.next;
      this.next = port === this.range.last ? this.range.first : port + 1;
      if (this.held.has(port)) continue;
      this.held.add(port);
      if (await this.isFree(port).catch(() => false)) taken.push(port);
      else this.held.delete(port);
    }
    if (taken.length < count) {
      this.release(taken);
      throw new RunnerError(`no free host port in ${this.range.first}-${this.range.last} for ${count} workload port${count === 1 ? '' : 's'}`);
    }
    return taken;
  }

  /** Ports a container from an earlier run still publishes. */
  claim(ports: Iterable<number>): void {
    for (const port of ports) this.held.add(port);
  }

  release(ports: Iterable<number>): void {
    for (const port of ports) this.held.delete(port);
  }
}
