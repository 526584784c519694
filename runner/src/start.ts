// `start`: heartbeat and run leases until SIGINT/SIGTERM.
//
// Shutdown: the first SIGINT/SIGTERM stops the loop; workloads that cannot outlive the runner
// (process executor) are stopped (SIGTERM, SIGKILL after --grace) and their exit reported, docker
// containers are left running unless --stop-workloads-on-exit (a runner restart or upgrade must
// not kill renters' leases; the next start finds them by label and enforces their ends_at); then
// one final heartbeat with draining: true, pending lease events get a few seconds, exit 0.
// A second signal exits at once (130). A 401 on a heartbeat stops the same way and exits 3.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { GpuMetrics } from '../../src/contracts/runner.ts';
import { ApiClient } from './api.ts';
import { Backoff } from './backoff.ts';
import { ChallengeResponder } from './challenges.ts';
import { CommandProcessor } from './commands.ts';
import { readConfig, statePathFor } from './config.ts';
import { detectMachine } from './detect.ts';
import { describeError } from './errors.ts';
import { EventReporter } from './events.ts';
import { DockerExecutor } from './executors/docker.ts';
import { createExecutor } from './executors/index.ts';
import { HeartbeatLoop } from './heartbeat.ts';
import { createSolver } from './inspections/solvers.ts';
import { LeaseManager } from './leases.ts';
import { LogShipper } from './logs/shipper.ts';
import type { Logger } from './log.ts';
import { queryMetrics } from './nvidia-smi.ts';
import type { Options } from './options.ts';
import { localAddresses, publicHostHint, publishPublicHost } from './public-host.ts';
import { CommandState } from './state.ts';
import { RUNNER_VERSION } from './version.ts';

export async function start(options: Options, log: Logger): Promise<number> {
  const solver = createSolver(options.solver);
  const config = readConfig(options.configPath);
  if (!config.node_private_key) log.warn('this node has no node key (it joined before node keys) and cannot sign answers: run `gridlease-runner join` again');
  const client = new ApiClient({ api: options.api ?? config.api, nodeToken: config.node_token });
  const bootId = randomUUID();
  log.info(`gridlease-runner ${RUNNER_VERSION} starting: node ${config.node_id}, ${options.executor} executor, ${solver.name} challenge solver, boot ${bootId}`);

  if (options.publicHost === null) log.warn(publicHostHint(localAddresses()));
  if (options.executor === 'process') {
    log.warn('the process executor runs workloads as this user with no isolation (they can read the node token): for trusted workloads and development only');
  }
  // Workloads' stdout and stderr, spooled next to the config until the API has them.
  const logs = new LogShipper({
    api: client,
    dir: path.join(path.dirname(options.configPath), 'log-spool'),
    log,
    backoff: () => new Backoff({ maxMs: options.backoffMaxMs }),
  });
  const executor = createExecutor(options.executor, {
    docker: { memory: options.memory, cpus: options.cpus, portRange: options.portRange, logs },
    process: { logs, portRange: options.portRange },
  });
  if (executor instanceof DockerExecutor) {
    await executor.check().then(
      (version) => log.info(`docker ${version}`),
      (err: unknown) => log.warn(`${describeError(err)}; leases will fail to start until docker works`),
    );
  }

  const metrics = metricsSource(options.nvidiaSmi, log);
  await metrics.read().catch(() => undefined); // learn the GPU indices before the first command
  const state = CommandState.load(statePathFor(options.configPath), config.node_id, log);
  const events = new EventReporter(client, log);
  const leases = new LeaseManager({ executor, events, log, graceMs: options.graceMs, gpuIndices: metrics.indices });
  await leases.adopt();
  logs.resume(); // after adopt: a spool no adopted workload reopened belongs to an ended one
  const challenges = new ChallengeResponder({
    api: client,
    nodeId: config.node_id,
    privateKey: config.node_private_key,
    solver,
    // The same detection as at join, run again for each challenge: the answer is about now.
    gpus: async () => (await detectMachine({ bin: options.nvidiaSmi })).machine.gpus,
    log,
  });
  const loop = new HeartbeatLoop({
    api: client,
    nodeId: config.node_id,
    bootId,
    metrics: metrics.read,
    leases,
    state,
    commands: new CommandProcessor(state, leases, log, challenges),
    log,
    intervalS: config.heartbeat_interval_s ?? 10,
    backoff: new Backoff({ maxMs: options.backoffMaxMs }),
    onFirstReply: () => publish(),
  });

  const stop = new AbortController();
  let failure: unknown = null;
  // Sent once the token is known to work (first heartbeat reply); a 400 or 401 ends the runner.
  let publishing: Promise<void> | null = null;
  const publish = () => {
    publishing = publishPublicHost(client, options.publicHost, log, stop.signal, new Backoff({ maxMs: options.backoffMaxMs })).catch((err: unknown) => {
      failure ??= err;
      stop.abort();
    });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      log.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    log.info(`${signal}: shutting down`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await loop.run(stop.signal);
  } catch (err) {
    failure ??= err;
    stop.abort();
  }
  await publishing;
  challenges.close();
  await leases.shutdown(options.stopWorkloadsOnExit);
  if (!failure) await loop.final();
  await Promise.all([events.flush(failure ? 2_000 : 5_000), logs.close(failure ? 2_000 : 5_000)]);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (failure) throw failure;
  log.info('stopped');
  return 0;
}

/** GPU metrics from nvidia-smi; logs when they become unavailable and when they come back. */
function metricsSource(bin: string | undefined, log: Logger) {
  let failing: string | null = null;
  let indices: number[] | null = null;
  return {
    indices: () => indices,
    read: async (): Promise<GpuMetrics[]> => {
      try {
        const { rows } = await queryMetrics({ bin });
        if (failing !== null) log.info('GPU metrics are back');
        failing = null;
        indices = rows.map((r) => r.index);
        return rows;
      } catch (err) {
        const why = describeError(err);
        if (failing === null) log.warn(`GPU metrics unavailable (${why}); heartbeats carry none until it recovers`);
        failing = why;
        throw err;
      }
    },
  };
}
