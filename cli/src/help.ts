import type { CommandName } from './args.ts';

export const HELP = `gridlease — rent GPU time on the Gridlease exchange

Usage:
  gridlease login --email EMAIL [--password-stdin] | --api-key KEY [--api URL]
                                      sign in and save an API key (~/.config/gridlease/cli.json, mode 0600)
  gridlease logout                    forget the saved login (and revoke the key login made)
  gridlease whoami                    the account the saved credentials belong to
  gridlease balance                   available and held balance per asset
  gridlease deposit AMOUNT [--asset USD|USDC|GRID]
                                      test money from a development server's faucet
  gridlease offers ["QUERY"] [--order FIELD] [--limit N]
                                      search the asks, e.g. "gpu_model=h100-80gb gpus>=2 region in [us-east,eu-central]"
  gridlease buy --region R --gpu MODEL --price USD_PER_GPU_H --duration 1h --image IMAGE [...]
  gridlease buy --file order.json [flags override the file]
                                      place a buy; waits until its lease runs unless --no-wait
  gridlease leases [--state S] [--role renter|provider] [--limit N]
  gridlease lease ID                  state, endpoints, cost so far
  gridlease logs ID [-f] [--since SEQ] [--tail N] [--raw]
  gridlease metrics ID [--minutes N]  per-minute GPU utilization, memory, temperature, power (default 15 min)
  gridlease terminate ID              end a lease now; the unused escrow comes back
  gridlease extend ID DURATION        buy more time (90s, 30m, 2h, 1h30m)

buy flags: --gpus N (default 1), --pay-with USD|USDC|GRID (default USD), --command '["python","train.py"]'
  or 'python train.py', --env NAME=VALUE (repeat), --port N (repeat), --tif gtc|ioc, --min-reliability 0.99,
  --verified-only, --no-wait, --timeout 10m (how long to wait for running).
  --file holds a workload {image, command, env, ports} or a buy order's fields with "workload" inside.

Global: --api URL (env GRIDLEASE_API), --config PATH (env GRIDLEASE_CLI_CONFIG), --json (machine-readable
  output on stdout; errors as JSON on stderr), -h/--help, -v/--version. GRIDLEASE_TOKEN overrides the saved key.
Log text is printed with control characters escaped (ESC as \\x1b); --raw prints it as the workload wrote it.
Exit codes: 0 ok, 1 API error, 2 usage, 3 auth, 4 not found, 5 insufficient funds, 6 API unreachable,
  7 lease not running (ended or timed out while waiting), 130 interrupted.
`;

export function commandHelp(command: CommandName | undefined): string {
  if (!command) return HELP;
  const lines = HELP.split('\n').filter((l) => l.includes(`gridlease ${command} `) || l.trimEnd().endsWith(`gridlease ${command}`));
  return lines.length ? `Usage:\n${lines.join('\n')}\n\n(gridlease --help lists every command and flag)\n` : HELP;
}
