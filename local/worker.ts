// Runs the Worker and its Durable Objects in workerd through Miniflare's API (no
// dev proxy in front, so local latency is workerd's own), configured from wrangler.toml.
// The API port is a socket of the Worker itself: no request.cf and no CF-Connecting-IP
// locally (per-IP limits see every local client as one).
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions, type V4MiniflareOptions } from 'miniflare';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { ROOT } from './dev-config.ts';

const QUIET_WRANGLER = { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_HIDE_BANNER: 'true' };

/** Bundles src/ exactly as `wrangler deploy` would, into outDir/index.js. */
export function bundleWorker(outDir: string): string {
  // Run wrangler's entry with this Node (24), not whatever `node` is first on PATH.
  const wrangler = join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
  const result = spawnSync(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', outDir], {
    cwd: ROOT,
    env: { ...process.env, ...QUIET_WRANGLER, WRANGLER_LOG: 'error' },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`bundling the Worker failed:\n${result.stderr || result.stdout}`);
  return join(outDir, 'index.js');
}

export interface WorkerOptions {
  script: string;
  host: string;
  port: number;
  persistDir: string;
  bindings: Record<string, string>;
  /** host:port of the local libSQL server, bound as LIBSQL_HTTP (see LocalBindings in src/env.ts). */
  libsqlAddress?: string;
  verbose?: boolean;
  /** Opens workerd's V8 inspector (DevTools protocol) on this port: CPU profiles, heap snapshots. */
  inspectorPort?: number;
}

export async function startWorker(opts: WorkerOptions): Promise<{ mf: Miniflare; url: URL }> {
  // wrangler turns wrangler.toml into Miniflare's worker options (bindings, Durable Objects,
  // compatibility settings); only the script, the network and persistence are ours.
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml'));
  const { modulesRules: _rules, ...fromConfig } = workerOptions;
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      ...fromConfig,
      name: 'gridlease',
      rootPath: ROOT,
      // wrangler's bundle is index.js plus the modules it imports as text (wrangler.toml
      // [[rules]]: Swagger UI's assets), written beside it under hashed names.
      modulesRoot: dirname(opts.script),
      modules: [
        { type: 'ESModule', path: opts.script },
        ...readdirSync(dirname(opts.script))
          .filter((f) => /-swagger-ui(-bundle\.js|\.css)$/.test(f))
          .map((f) => ({ type: 'Text', path: join(dirname(opts.script), f) })),
      ],
      bindings: { ...(workerOptions.bindings as Record<string, unknown>), ...opts.bindings },
      ...(opts.libsqlAddress ? { serviceBindings: { ...(workerOptions.serviceBindings as Record<string, unknown> | undefined), LIBSQL_HTTP: { external: { address: opts.libsqlAddress, http: {} } } } } : {}),
      host: opts.host,
      // Requests reach the Worker on its own socket, as they do deployed. Miniflare's entry
      // socket (a dev router that copies each request into another isolate and back) is kept
      // on a spare port; nothing here calls it.
      port: 0,
      unsafeDirectSockets: [{ host: opts.host, port: opts.port }],
      resourcePersistencePath: join(opts.persistDir, 'workerd'),
      logRequests: false,
      // A fixed request.cf: Miniflare would otherwise try to download one.
      cf: { colo: 'LCL', country: 'ZZ', city: 'Localhost' },
      // The Worker's own JSON log lines go straight to our stdout/stderr.
      handleStructuredLogs: ({ level, message }: { level: string; message: string }) => {
        (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${message}\n`);
      },
      telemetry: { enabled: false },
      ...(opts.inspectorPort ? { inspectorPort: opts.inspectorPort } : {}),
      log: new Log(opts.verbose ? LogLevel.DEBUG : LogLevel.WARN),
    } as V4MiniflareOptions),
  );
  await mf.ready;
  const url = await mf.unsafeGetDirectURL('gridlease');
  return { mf, url };
}
