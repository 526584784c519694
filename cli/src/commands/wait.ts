// Waiting for a bought lease to run, with a progress line, and how a lease's endpoints read.
import type { Gridlease, Schemas } from '../../../sdk/src/index.ts';
import type { Context } from '../context.ts';
import { CliError, EXIT } from '../exit.ts';
import { escapeControls, table } from '../output.ts';

export type Lease = Schemas['Lease'];

export type Endpoint = Schemas['LeaseEndpoint'];
export type EndpointsState = NonNullable<Lease['endpoints_state']>;

const ENDPOINT_STATES: Record<EndpointsState, string> = {
  ready: 'ready',
  no_public_host: 'the provider gave no public host: the workload runs but cannot be reached from outside',
  not_running: 'not running: endpoints appear once the lease runs',
  no_ports: 'the workload asked for no ports',
};

/** The endpoints as a table, or a line saying why there are none; empty for the provider's view. */
export function describeEndpoints(lease: Lease): string {
  const state = lease.endpoints_state;
  if (!state || state === 'no_ports') return '';
  const endpoints = lease.endpoints ?? [];
  if (endpoints.length === 0) return `endpoints: ${ENDPOINT_STATES[state]}`;
  return `endpoints:\n${table(['port', 'host', 'host port', 'url'], endpoints.map((e) => [e.port, e.host, e.host_port, e.url]))}`;
}

const OVER = new Set(['completed', 'failed', 'cancelled']);

/**
 * Polls the order until it has a lease, then the lease until it runs; progress on stderr (one
 * line rewritten on a terminal, state changes only otherwise). Throws CliError (exit 7) when the
 * lease ends first or the time runs out.
 */
export async function waitForLease(ctx: Context, client: Gridlease, orderId: string, leaseId: string | undefined, timeoutS: number): Promise<Lease> {
  const { io } = ctx;
  const started = Date.now();
  const deadline = started + timeoutS * 1000;
  let lastLine = '';
  const progress = (text: string) => {
    if (text === lastLine && !io.isTTY) return;
    lastLine = text;
    const elapsed = Math.round((Date.now() - started) / 1000);
    if (io.isTTY) io.err(`\r\x1b[2K${text} (${elapsed}s)`, false);
    else io.err(text);
  };
  const done = () => {
    if (io.isTTY && lastLine) io.err('\r\x1b[2K', false);
  };
  try {
    let id = leaseId;
    while (id === undefined) {
      const { data } = await client.GET('/v1/orders/{id}', { params: { path: { id: orderId } } });
      id = data!.leases[0]?.id;
      if (id) break;
      const status = data!.order.status;
      if (status !== 'open') throw new CliError(`order ${orderId} is ${status} without a lease`, EXIT.notRunning);
      progress(`order ${orderId} is open: waiting for a matching ask`);
      if (Date.now() > deadline) throw new CliError(`no ask matched order ${orderId} in ${timeoutS} s; it stays open (cancel it with DELETE /v1/orders/${orderId})`, EXIT.notRunning);
      await io.sleep(1000, io.signal);
    }
    for (;;) {
      const { data } = await client.GET('/v1/leases/{id}', { params: { path: { id } } });
      const lease = data!.lease;
      if (lease.state === 'running') return lease;
      if (OVER.has(lease.state)) {
        const reason = lease.history.at(-1)?.reason;
        throw new CliError(`lease ${id} is ${lease.state}${reason ? `: ${escapeControls(reason)}` : ''}`, EXIT.notRunning);
      }
      progress(`lease ${id} is ${lease.state} on node ${lease.node_id}`);
      if (Date.now() > deadline) throw new CliError(`lease ${id} is still ${lease.state} after ${timeoutS} s (see gridlease lease ${id})`, EXIT.notRunning);
      await io.sleep(1000, io.signal);
    }
  } catch (err) {
    if (!io.signal.aborted) throw err;
    const what = lastLine.startsWith('order') ? `order ${orderId} stays open` : `the lease goes on`;
    throw new CliError(`stopped waiting; ${what} (see gridlease leases)`, EXIT.interrupted);
  } finally {
    done();
  }
}
