// What every command gets: its arguments, where to print, and API clients built on demand from
// the flags, the environment and the saved login.
import { createGridlease, type Gridlease } from '../../sdk/src/index.ts';
import type { Flags, Parsed } from './args.ts';
import { defaultConfigPath, resolveCredentials, type Credentials } from './config.ts';
import { CliError, EXIT } from './exit.ts';
import type { Output } from './output.ts';

export interface Io extends Output {
  env: NodeJS.ProcessEnv;
  /** All of standard input (login --password-stdin). */
  readStdin(): Promise<string>;
  /** Asks without echo (an interactive password); undefined when there is no terminal. */
  promptHidden?(question: string): Promise<string>;
  /** True when stdout is a terminal: progress lines are rewritten in place. */
  isTTY: boolean;
  fetch?: typeof fetch;
  /** Aborted on Ctrl-C: long waits and `logs -f` end cleanly. */
  signal: AbortSignal;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface Context {
  args: string[];
  flags: Flags;
  io: Io;
  json: boolean;
  configPath: string;
  credentials(): Credentials;
  /** A client with the saved or given token; exits 3 when there is none. */
  client(): Gridlease;
  /** A client for public routes, with a token if one is at hand. */
  publicClient(): Gridlease;
}

export function makeContext(parsed: Parsed, io: Io): Context {
  const configPath = parsed.flags.config ?? (io.env.GRIDLEASE_CLI_CONFIG || defaultConfigPath(io.env));
  let creds: Credentials | undefined;
  const credentials = () => (creds ??= resolveCredentials({ api: parsed.flags.api }, io.env, configPath));
  const make = (token: string | undefined) => createGridlease({ baseUrl: credentials().api, token, ...(io.fetch ? { fetch: io.fetch } : {}) });
  return {
    args: parsed.args,
    flags: parsed.flags,
    io,
    json: parsed.flags.json ?? false,
    configPath,
    credentials,
    client() {
      const { token } = credentials();
      if (!token) throw new CliError('not logged in: run `gridlease login` or set GRIDLEASE_TOKEN', EXIT.auth);
      return make(token);
    },
    publicClient: () => make(credentials().token),
  };
}
