// logs and metrics: what a lease's workload printed, and what its GPUs did.
import type { Gridlease, LogLine, Schemas } from '../../../sdk/src/index.ts';
import { intFlag } from '../args.ts';
import type { Context } from '../context.ts';
import { EXIT } from '../exit.ts';
import { escapeControls, json, table } from '../output.ts';

export type LogPage = Schemas['LeaseLogs'];

async function logPage(client: Gridlease, id: string, query: { since?: number; tail?: number; limit?: number }): Promise<LogPage> {
  const { data } = await client.GET('/v1/leases/{id}/logs', { params: { path: { id }, query } });
  return data!;
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
  const tail = intFlag('tail', ctx.flags.tail, 1, 5000);
  const limit = intFlag('limit', ctx.flags.limit, 1, 5000);
  const client = ctx.client();
  const printer = logPrinter(ctx);

  // What is stored now: the last `tail` lines, one `limit` page, or every page from `since`.
  const all: LogLine[] = [];
  let page = await logPage(client, id, { ...(since !== undefined ? { since } : {}), ...(tail ? { tail } : {}), ...(limit ? { limit } : {}) });
  all.push(...page.data);
  while (tail === undefined && limit === undefined && page.data.length > 0) {
    const cursor = page.next_seq;
    page = await logPage(client, id, { since: cursor });
    all.push(...page.data.filter((l) => l.seq >= cursor));
    if (page.next_seq <= cursor) break;
  }
  if (ctx.json && !ctx.flags.follow) {
    ctx.io.out(json({ ...page, data: all }));
    return EXIT.ok;
  }
  let last = since === undefined ? -1 : since - 1;
  for (const line of all) {
    printer.line(line);
    last = Math.max(last, line.seq);
  }
  if (!ctx.json) {
    if (page.lost > 0) ctx.io.err(`gridlease: ${page.lost} line${page.lost === 1 ? '' : 's'} never reached the platform (the node's spool overflowed)`);
    if (page.dropped > 0) ctx.io.err(`gridlease: the oldest ${page.dropped} line${page.dropped === 1 ? ' was' : 's were'} dropped (the platform keeps the newest 8 MiB)`);
  }
  const ended = (exitCode: number | null) => {
    printer.flush();
    if (ctx.json) ctx.io.out(JSON.stringify({ event: 'end', exit_code: exitCode }));
    else ctx.io.err(`gridlease: the workload exited${exitCode === null ? '' : ` with code ${exitCode}`}`);
    return EXIT.ok;
  };
  if (!ctx.flags.follow) {
    printer.flush();
    if (page.ended && !ctx.json) ctx.io.err(`gridlease: the workload exited${page.exit_code === null ? '' : ` with code ${page.exit_code}`}`);
    return EXIT.ok;
  }
  if (page.ended && page.next_seq <= last + 1) return ended(page.exit_code);

  // -f: the stream from the line after the last one shown; the SDK reconnects from there when
  // the server drops a slow follower.
  for await (const ev of client.followLogs(id, { after: last, signal: ctx.io.signal })) {
    if (ev.type === 'line') printer.line(ev.line);
    else return ended(ev.exit_code);
  }
  printer.flush();
  return ctx.io.signal.aborted ? EXIT.interrupted : EXIT.ok;
}

export async function metrics(ctx: Context): Promise<number> {
  const id = ctx.args[0]!;
  const minutes = intFlag('minutes', ctx.flags.minutes, 1, 1440) ?? 15;
  const { data } = await ctx.client().GET('/v1/leases/{id}/metrics', { params: { path: { id }, query: { minutes } } });
  const m = data!;
  if (ctx.json) {
    ctx.io.out(json(m));
    return EXIT.ok;
  }
  const rows = m.data.flatMap((point) => point.gpus.map((g) => [point.minute, g.index, g.utilization_pct, g.memory_used_mib, g.temperature_c, g.power_w]));
  ctx.io.out(table(['minute', 'gpu', 'util %', 'mem mib', 'temp c', 'power w'], rows));
  if (rows.length === 0) ctx.io.err(`gridlease: no metrics for lease ${id} in the last ${minutes} min`);
  return EXIT.ok;
}
