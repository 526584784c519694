// The CLI without the process around it: argv and an Io in, an exit code out (tests call this).
import { GridleaseError } from '../../sdk/src/errors.ts';
import { COMMANDS, parseArgs, type CommandName } from './args.ts';
import { balance, deposit, login, logout, whoami } from './commands/account.ts';
import { extend, lease, leases, terminate } from './commands/leases.ts';
import { logs, metrics } from './commands/logs.ts';
import { buy, offers } from './commands/market.ts';
import { makeContext, type Context, type Io } from './context.ts';
import { CliError, EXIT, fromApiError } from './exit.ts';
import { commandHelp } from './help.ts';
import { escapeControls } from './output.ts';
import { CLI_VERSION } from './version.ts';

const HANDLERS: Record<Exclude<CommandName, 'help' | 'version'>, (ctx: Context) => Promise<number>> = {
  login,
  logout,
  whoami,
  balance,
  deposit,
  offers,
  buy,
  leases,
  lease,
  logs,
  metrics,
  terminate,
  extend,
};

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const wantsJson = argv.includes('--json');
  try {
    const parsed = parseArgs(argv);
    if (parsed.command === 'help') {
      const topic = parsed.args[0];
      io.out(commandHelp(topic && Object.hasOwn(COMMANDS, topic) ? (topic as CommandName) : undefined), false);
      return EXIT.ok;
    }
    if (parsed.command === 'version') {
      io.out(CLI_VERSION);
      return EXIT.ok;
    }
    return await HANDLERS[parsed.command](makeContext(parsed, io));
  } catch (err) {
    if (io.signal.aborted && !(err instanceof CliError)) return EXIT.interrupted;
    const e = err instanceof GridleaseError ? fromApiError(err) : err;
    if (e instanceof CliError) {
      if (wantsJson) io.err(JSON.stringify({ error: { code: e.code ?? (e.exitCode === EXIT.usage ? 'usage' : 'cli_error'), message: e.message, request_id: e.requestId, status: e.status } }));
      else io.err(`gridlease: ${escapeControls(e.message)}${e.requestId ? ` (request_id ${e.requestId})` : ''}`);
      return e.exitCode;
    }
    io.err(`gridlease: unexpected error: ${escapeControls((err as Error)?.message ?? String(err))}`);
    if (io.env.GRIDLEASE_DEBUG && err instanceof Error) io.err(err.stack ?? '');
    return EXIT.api;
  }
}
