// Command line and environment → options. Flags win over the environment.
import util from 'node:util';
import { REGION_IDS } from '../../src/catalog/regions.ts';
import { defaultConfigPath } from './config.ts';
import { EXIT, RunnerError } from './errors.ts';
import { EXECUTORS, type ExecutorName } from './executors/index.ts';
import { isSolverName, type SolverName } from './inspections/solvers.ts';
import { DEFAULT_PORT_RANGE, type PortRange, parsePortRange } from './executors/ports.ts';
import { PUBLIC_HOST_PATTERN } from '../../src/contracts/runner.ts';

export const COMMANDS = ['detect', 'join', 'start', 'status', 'help', 'version'] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface Options {
  command: CommandName;
  api: string | undefined;
  configPath: string;
  executor: ExecutorName;
  nvidiaSmi: string | undefined;
  token: string | undefined;
  region: string | undefined;
  stopWorkloadsOnExit: boolean;
  graceMs: number;
  backoffMaxMs: number;
  memory: string | undefined;
  cpus: string | undefined;
  portRange: PortRange;
  /** How renters reach this machine's workloads (a DNS name or IP); null: not reachable. */
  publicHost: string | null;
  solver: SolverName;
}

const usage = (message: string) => new RunnerError(`${message} (see gridlease-runner --help)`, EXIT.usage);

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Options {
  // util.parseArgs arrived in Node 18.3 (a named import would fail to load on older Nodes).
  if (typeof util.parseArgs !== 'function') throw new RunnerError(`Node.js 18.3 or newer is needed (this is ${process.version})`);
  let parsed;
  try {
    parsed = util.parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        api: { type: 'string' },
        config: { type: 'string' },
        executor: { type: 'string' },
        'nvidia-smi': { type: 'string' },
        token: { type: 'string' },
        region: { type: 'string' },
        'stop-workloads-on-exit': { type: 'boolean' },
        grace: { type: 'string' },
        memory: { type: 'string' },
        cpus: { type: 'string' },
        'port-range': { type: 'string' },
        'public-host': { type: 'string' },
        solver: { type: 'string' },
      },
    });
  } catch (err) {
    throw usage((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
  }
  const { values, positionals } = parsed;
  let command: CommandName;
  if (values.help) command = 'help';
  else if (values.version) command = 'version';
  else if (positionals.length === 0) command = 'help';
  else if ((COMMANDS as readonly string[]).includes(positionals[0]!)) command = positionals[0] as CommandName;
  else throw usage(`unknown command "${positionals[0]}"`);
  if (positionals.length > 1) throw usage(`unexpected argument "${positionals[1]}"`);

  const executor = values.executor ?? env.GRIDLEASE_EXECUTOR ?? 'docker';
  if (!(EXECUTORS as readonly string[]).includes(executor)) throw usage(`unknown executor "${executor}": use docker or process`);

  const solver = values.solver ?? (env.GRIDLEASE_SOLVER || 'cpu');
  if (!isSolverName(solver)) throw usage(`unknown solver "${solver}": use cpu or gpu`);

  const seconds = (name: string, value: string | undefined, fallback: number, min: number) => {
    if (value === undefined || value === '') return fallback * 1000;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw usage(`${name} must be a number of seconds ≥ ${min}`);
    return Math.round(n * 1000);
  };

  const portRangeText = values['port-range'] ?? (env.GRIDLEASE_PORT_RANGE || undefined);
  let portRange = DEFAULT_PORT_RANGE;
  if (portRangeText !== undefined) {
    try {
      portRange = parsePortRange(portRangeText);
    } catch (err) {
      throw usage(`--port-range: ${(err as Error).message}`);
    }
  }

  const publicHost = values['public-host'] ?? (env.GRIDLEASE_PUBLIC_HOST || undefined);
  if (publicHost !== undefined && !PUBLIC_HOST_PATTERN.test(publicHost)) {
    throw usage(`--public-host ${JSON.stringify(publicHost.slice(0, 80))} must be a DNS name or an IP address, without scheme or port`);
  }

  return {
    command,
    api: values.api ?? (env.GRIDLEASE_API || undefined),
    configPath: values.config ?? (env.GRIDLEASE_CONFIG || defaultConfigPath(env)),
    executor: executor as ExecutorName,
    nvidiaSmi: values['nvidia-smi'] ?? (env.GRIDLEASE_NVIDIA_SMI || undefined),
    token: values.token ?? (env.GRIDLEASE_JOIN_TOKEN || undefined),
    region: values.region ?? (env.GRIDLEASE_REGION || undefined),
    stopWorkloadsOnExit: values['stop-workloads-on-exit'] ?? false,
    graceMs: seconds('--grace', values.grace, 10, 0),
    backoffMaxMs: seconds('GRIDLEASE_BACKOFF_MAX_S', env.GRIDLEASE_BACKOFF_MAX_S, 60, 1),
    memory: values.memory,
    cpus: values.cpus,
    portRange,
    publicHost: publicHost ?? null,
    solver,
  };
}

export const HELP = `gridlease-runner — lists this machine's GPUs on the Gridlease exchange and runs leased workloads

Usage:
  gridlease-runner detect                 print the detected machine (GPUs with catalog model ids) as JSON
  gridlease-runner join --api URL --token JOIN_TOKEN --region REGION
                                          register this machine; saves the node credentials to the config file
  gridlease-runner start                  heartbeat and run leases until SIGINT/SIGTERM
  gridlease-runner status                 print the config (without the token), whether the API answers, and the
                                          node's lines in the last 3 closed rewards epochs (public reports)
  gridlease-runner verify-report ID|URL|FILE [--api URL] [--jwks FILE|URL] [--json]
                                          re-check a platform challenge or inspection report offline (exit 0 holds, 1 not)
  gridlease-runner verify-epoch EPOCH|URL|FILE [--api URL] [--schedule FILE|URL] [--save FILE] [--json]
                                          recompute a closed rewards epoch from its public report (every page) and the
                                          schedule: inputs hash, E(n), eligibility, weights, split, vesting, totals
  gridlease-runner inspect login --api URL --token TOKEN [--account ACCOUNT_ID]
                                          inspectors: make a verdict key, register it, save inspector.json (0600)
  gridlease-runner inspect [run|once] [--interval SECONDS] [--own-entries N]
                                          inspectors: re-check assigned transcripts, commit then reveal signed
                                          verdicts (run polls until SIGINT/SIGTERM; once does one pass)
  gridlease-runner --help | --version

Options:
  --api URL                 API base URL (env GRIDLEASE_API; start/status default to the one saved at join)
  --config PATH             config file (env GRIDLEASE_CONFIG; default ~/.config/gridlease/runner.json);
                            executed command ids are kept next to it in runner.state.json
  --token JOIN_TOKEN        one-time join token (env GRIDLEASE_JOIN_TOKEN keeps it out of ps and shell history)
  --region REGION           ${REGION_IDS.join(', ')} (env GRIDLEASE_REGION)
  --executor docker|process how leases run (env GRIDLEASE_EXECUTOR; default docker)
                              docker:  one confined container per lease (no privileges, no host
                                       namespaces or mounts), only the leased GPUs (--gpus "device=…"),
                                       each port published on a free host port of --port-range
                              process: workload.command as a host process of this user, with CUDA_VISIBLE_DEVICES
                                       set (NO isolation: for trusted workloads and development only);
                                       each port gets a free host port of --port-range, passed as
                                       GRIDLEASE_PORT_<port>=<host port> (and PORT when there is one):
                                       the process must listen on those
  --nvidia-smi PATH         nvidia-smi to use (env GRIDLEASE_NVIDIA_SMI; default: found on PATH)
  --stop-workloads-on-exit  stop containers when the runner exits; by default they keep running and the
                            next start watches them again (process workloads are always stopped)
  --grace SECONDS           SIGTERM → SIGKILL grace when stopping a workload (default 10)
  --memory SIZE, --cpus N   docker --memory / --cpus limits for every container
  --port-range FIRST-LAST   host ports for workload ports (env GRIDLEASE_PORT_RANGE; default 40000-40999);
                            renters connect to them directly: open this range (TCP) on the firewall and
                            forward it on the router to this machine
  --public-host HOST        the DNS name or IP address renters use to reach this machine (env
                            GRIDLEASE_PUBLIC_HOST; no scheme or port); sent to the API at start. Unset:
                            renters see no endpoints for this node's workloads
  --solver cpu|gpu          what answers capacity challenges (env GRIDLEASE_SOLVER; default cpu, the reference
                            CPU solver, for small challenges; gpu runs the CUDA solver image
                            gridlease/capacity-solver:<version> with docker --gpus all, built from runner/gpu)

Inspectors: inspect keeps its own config (--config PATH, env GRIDLEASE_INSPECTOR_CONFIG; default inspector.json
next to runner.json) and pending verdicts in inspector.state.json; the token may come from GRIDLEASE_INSPECTOR_TOKEN.
--interval defaults to 5 s, --own-entries (entries per GPU it picks itself inside the opened leaves) to 16.

Workload logs (stdout and stderr, both executors) go to the API; while it is slow or out of reach they
wait in a spool next to the config (log-spool/, at most 16 MiB per lease, the oldest lines dropped first).

Environment: GRIDLEASE_BACKOFF_MAX_S caps the retry back-off when the API is down (default 60).
GRIDLEASE_GPU_SOLVER_IMAGE replaces the GPU solver's image; GRIDLEASE_GPU_SOLVER_CMD replaces its whole
command (split at spaces; it must speak the JSON lines of runner/gpu/capacity.cu on stdin/stdout).
Exit codes: 0 ok, 1 error, 2 usage, 3 node token refused (node revoked or joined again elsewhere).
`;
