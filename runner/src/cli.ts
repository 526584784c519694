// gridlease-runner: the Gridlease provider agent. Entry point of the bundle.
import { detectMachine } from './detect.ts';
import { EXIT, RunnerError, describeError } from './errors.ts';
import { join } from './join.ts';
import { stderrLogger } from './log.ts';
import { HELP, parseOptions } from './options.ts';
import { start } from './start.ts';
import { status } from './status.ts';
import { verifyEpoch } from './verify-epoch.ts';
import { verifyReport } from './verify-report.ts';
import { inspect } from './inspect.ts';
import { defaultConfigPath } from './config.ts';
import { RUNNER_VERSION } from './version.ts';

export async function main(argv: readonly string[]): Promise<number> {
  const log = stderrLogger();
  try {
    // verify-report takes a positional argument and needs no node config: its own parser.
    // verify-epoch likewise: a closed rewards epoch recomputed from its public report.
    if (argv[0] === 'verify-report' || argv[0] === 'verify-epoch') {
      const out = (stream: NodeJS.WriteStream) => (line: string) => stream.write(`${line}\n`);
      const configPath = process.env.GRIDLEASE_CONFIG || defaultConfigPath();
      const io = { env: process.env, configPath, out: out(process.stdout), err: out(process.stderr) };
      return await (argv[0] === 'verify-report' ? verifyReport : verifyEpoch)(argv.slice(1), io);
    }
    // inspect: an inspector's agent, with credentials of its own (inspector.json): its own parser.
    if (argv[0] === 'inspect') {
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        return await inspect(argv.slice(1), { env: process.env, log, out: (line) => process.stdout.write(`${line}\n`), signal: stop.signal });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }
    const options = parseOptions(argv);
    switch (options.command) {
      case 'help':
        process.stdout.write(HELP);
        return EXIT.ok;
      case 'version':
        process.stdout.write(`${RUNNER_VERSION}\n`);
        return EXIT.ok;
      case 'detect': {
        const { machine, warnings } = await detectMachine({ bin: options.nvidiaSmi });
        for (const w of warnings) log.warn(w);
        process.stdout.write(`${JSON.stringify(machine, null, 2)}\n`);
        return EXIT.ok;
      }
      case 'join':
        process.stdout.write(`${await join(options, log)}\n`);
        return EXIT.ok;
      case 'status': {
        const { text, ok } = await status(options);
        process.stdout.write(`${text}\n`);
        return ok ? EXIT.ok : EXIT.error;
      }
      case 'start':
        return await start(options, log);
    }
  } catch (err) {
    if (err instanceof RunnerError) {
      process.stderr.write(`gridlease-runner: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`gridlease-runner: unexpected error: ${describeError(err)}\n`);
    if (process.env.GRIDLEASE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return EXIT.error;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  () => process.exit(EXIT.error),
);
