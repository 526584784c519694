// logs and metrics: what a lease's workload printed, and what its GPUs did.
import type { Gridlease, LogLine } from '../../../sdk/src/index.ts';
import { intFlag } from '../args.ts';
import type { Context } from '../context.ts';
import { EXIT } from '../exit.ts';
import { escapeControls, json, table } from '../output.ts';

export interface LogPage {
  data: LogLine[];
  next_seq: number;
  ended: boolean;
  exit_code: number | null;
  lost: number;
}

export interface LeaseMetrics {
  lease_id: string;
  gpu_indices: number[];
  data: { minute: string; gpus: { index: number; utilization_pct: number | null; memory_used_mib: number | null; temperature_c: number | null; power_w: number | null }[] }[];
}

// Both routes arrived after the SDK's generated types were last built: called through the
// untyped request while schema.d.ts lacks them.
type Untyped = { GET(path: string, init: { params: { path: { id: string }; query: Record<string, number> } }): Promise<{ data?: unknown }> };

async function logPage(client: Gridlease, id: string, query: Record<string, number>): Promise<LogPage> {
  const { data } = await (client as unknown as Untyped).GET('/v1/leases/{id}/logs', { params: { path: { id }, query } });
  return data as LogPage;
}

/**
 * Prints lines as a terminal may show them: stdout lines to stdout, stderr lines to stderr,
 * control characters escaped unless raw. A `partial` line continues in the next seq: its
 * pieces are printed as one line.
 */
export function logPrinter(ctx: Context) {
  const raw = ctx.flags.raw ?? false;
  let pending: { stream: LogLine['stream']; text: string } | null = null;
  const show = (text: string) => (raw ? text : escapeControls(text));
  return {
    line(line: LogLine) {
      if (ctx.json) {
        ctx.io.out(JSON.stringify(line));
        return;
      }
      if (pending && pending.stream !== line.stream) this.flush();
      const text = (pending?.text ?? '') + line.text;
      if (line.partial) {
        pending = { stream: line.stream, text };
        return;
      }
      pending = null;
      (line.stream === 'stderr' ? ctx.io.err : ctx.io.out)(show(text));
    },
    flush() {
      if (pending) (pending.stream === 'stderr' ? ctx.io.err : ctx.io.out)(show(pending.text));
      pending = null;
    },
  };
}

export async function logs(ctx: Context): Promise<number> {
  const id = ctx.args[0]!;
  const since = intFlag('since', ctx.flags.since, 0, Number.MAX_SAFE_INTEGER);
  const tail = intFlag('tail', ctx.flags.tail, 0, 100_000);
  const limit = intFlag('limit', ctx.flags.limit, 1, 10_000);
  const client = ctx.client();
  const printer = logPrinter(ctx);

  // What is stored now: the last `tail` lines, or everything from `since`, page by page.
  let page: LogPage;
  const all: LogLine[] = [];
  let last = since === undefined ? -1 : since - 1;
  let lost = 0;
  if (tail !== undefined) {
    page = await logPage(client, id, { tail, ...(since !== undefined ? { since } : {}) });
    all.push(...page.data);
  } else {
    let cursor = since ?? 0;
    for (;;) {
      page = await logPage(client, id, { since: cursor, ...(limit ? { limit } : {}) });
      all.push(...page.data);
      lost = Math.max(lost, page.lost);
      if (page.data.length === 0 || page.next_seq <= cursor || limit !== undefined) break;
      cursor = page.next_seq;
    }
  }
  lost = Math.max(lost, page.lost);
  if (ctx.json && !ctx.flags.follow) {
    ctx.io.out(json({ data: all, next_seq: page.next_seq, ended: page.ended, exit_code: page.exit_code, lost }));
    return EXIT.ok;
  }
  for (const line of all) {
    printer.line(line);
    last = Math.max(last, line.seq);
  }
  if (lost > 0 && !ctx.json) ctx.io.err(`gridlease: ${lost} line${lost === 1 ? '' : 's'} of this lease's log were lost on the node before they reached the platform`);
  if (!ctx.flags.follow || page.ended) {
    printer.flush();
    if (ctx.flags.follow && ctx.json) ctx.io.out(JSON.stringify({ event: 'end', exit_code: page.exit_code }));
    else if (page.ended && !ctx.json) ctx.io.err(`gridlease: the workload exited${page.exit_code === null ? '' : ` with code ${page.exit_code}`}`);
    return EXIT.ok;
  }

  // -f: the stream from the last line shown; the SDK reconnects from there when the server
  // drops a slow follower.
  for await (const ev of client.followLogs(id, { after: last, signal: ctx.io.signal })) {
    if (ev.type === 'line') printer.line(ev.line);
    else {
      printer.flush();
      if (ctx.json) ctx.io.out(JSON.stringify({ event: 'end', exit_code: ev.exit_code }));
      else ctx.io.err(`gridlease: the workload exited${ev.exit_code === null ? '' : ` with code ${ev.exit_code}`}`);
      return EXIT.ok;
    }
  }
  printer.flush();
  return ctx.io.signal.aborted ? EXIT.interrupted : EXIT.ok;
}

export async function metrics(ctx: Context): Promise<number> {
  const id = ctx.args[0]!;
  const minutes = intFlag('minutes', ctx.flags.minutes, 1, 1440) ?? 15;
  const { data } = await (ctx.client() as unknown as Untyped).GET('/v1/leases/{id}/metrics', { params: { path: { id }, query: { minutes } } });
  const m = data as LeaseMetrics;
  if (ctx.json) {
    ctx.io.out(json(m));
    return EXIT.ok;
  }
  const rows = m.data.flatMap((point) => point.gpus.map((g) => [point.minute, g.index, g.utilization_pct, g.memory_used_mib, g.temperature_c, g.power_w]));
  ctx.io.out(table(['minute', 'gpu', 'util %', 'mem mib', 'temp c', 'power w'], rows));
  if (rows.length === 0) ctx.io.err(`gridlease: no metrics for lease ${id} in the last ${minutes} min`);
  return EXIT.ok;
}
