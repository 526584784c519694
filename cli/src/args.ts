// Command line → a command, its positionals and its flags. Every flag is declared once; each
// command names the ones it takes, so `gridlease balance --tail 5` is a usage error, not ignored.
import util from 'node:util';
import { usageError } from './exit.ts';

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  json: { type: 'boolean' },
  api: { type: 'string' },
  config: { type: 'string' },
  // login
  email: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'api-key': { type: 'string' },
  // deposit
  asset: { type: 'string' },
  // offers, leases
  order: { type: 'string' },
  limit: { type: 'string' },
  state: { type: 'string' },
  role: { type: 'string' },
  // buy
  file: { type: 'string' },
  region: { type: 'string' },
  gpu: { type: 'string' },
  gpus: { type: 'string' },
  price: { type: 'string' },
  duration: { type: 'string' },
  'pay-with': { type: 'string' },
  image: { type: 'string' },
  command: { type: 'string' },
  env: { type: 'string', multiple: true },
  port: { type: 'string', multiple: true },
  tif: { type: 'string' },
  'min-reliability': { type: 'string' },
  'verified-only': { type: 'boolean' },
  'no-wait': { type: 'boolean' },
  timeout: { type: 'string' },
  // logs, metrics
  follow: { type: 'boolean', short: 'f' },
  since: { type: 'string' },
  tail: { type: 'string' },
  raw: { type: 'boolean' },
  minutes: { type: 'string' },
} as const satisfies Record<string, util.ParseArgsOptionDescriptor>;

export type Flag = keyof typeof OPTIONS;
export type Flags = { [K in Flag]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

const GLOBAL: readonly Flag[] = ['help', 'json', 'api', 'config'];
const BUY: readonly Flag[] = ['file', 'region', 'gpu', 'gpus', 'price', 'duration', 'pay-with', 'image', 'command', 'env', 'port', 'tif', 'min-reliability', 'verified-only', 'no-wait', 'timeout'];

/** Each command: its positional arguments (names; `?` optional, `*` any number) and the flags it takes besides the global ones. */
export const COMMANDS = {
  login: { args: [], flags: ['email', 'password-stdin', 'api-key'] },
  logout: { args: [], flags: [] },
  whoami: { args: [], flags: [] },
  balance: { args: [], flags: [] },
  deposit: { args: ['amount'], flags: ['asset'] },
  // The query may come as one quoted argument or as several words (joined with spaces).
  offers: { args: ['query*'], flags: ['order', 'limit'] },
  buy: { args: [], flags: BUY },
  leases: { args: [], flags: ['state', 'role', 'limit'] },
  lease: { args: ['id'], flags: [] },
  logs: { args: ['id'], flags: ['follow', 'since', 'tail', 'raw', 'limit'] },
  metrics: { args: ['id'], flags: ['minutes'] },
  terminate: { args: ['id'], flags: [] },
  extend: { args: ['id', 'duration'], flags: [] },
  help: { args: ['command?'], flags: [] },
  version: { args: [], flags: [] },
} as const satisfies Record<string, { args: readonly string[]; flags: readonly Flag[] }>;

export type CommandName = keyof typeof COMMANDS;

export interface Parsed {
  command: CommandName;
  args: string[];
  flags: Flags;
}

/** Short flags, `-f` → `follow`. */
const SHORT = new Map(Object.entries(OPTIONS).flatMap(([name, o]) => ('short' in o ? [[`-${o.short}`, name]] : [])));

/**
 * `--order -reliability`: a value that starts with `-` is taken as the value when the flag takes
 * one and the word is not itself a flag (util.parseArgs would call it ambiguous).
 */
function joinDashValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    const next = argv[i + 1];
    const name = word.startsWith('--') ? word.slice(2) : undefined;
    const takesValue = name !== undefined && Object.hasOwn(OPTIONS, name) && OPTIONS[name as Flag].type === 'string';
    const isFlag = (w: string) => (w.startsWith('--') && Object.hasOwn(OPTIONS, w.slice(2).split('=')[0]!)) || SHORT.has(w);
    if (takesValue && next !== undefined && next.startsWith('-') && next !== '--' && !isFlag(next)) {
      out.push(`${word}=${next}`);
      i++;
    } else out.push(word);
  }
  return out;
}

export function parseArgs(argv: readonly string[]): Parsed {
  let parsed;
  try {
    parsed = util.parseArgs({ args: joinDashValues(argv), options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usageError((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
  }
  const flags = parsed.values as Flags;
  const [first, ...rest] = parsed.positionals;
  if (flags.version && first === undefined) return { command: 'version', args: [], flags };
  if (first === undefined) return { command: 'help', args: [], flags };
  if (!Object.hasOwn(COMMANDS, first)) throw usageError(`unknown command "${first}"`);
  const command = first as CommandName;
  if (flags.help) return { command: 'help', args: [command], flags };
  const spec = COMMANDS[command];
  const allowed = new Set<string>([...GLOBAL, ...spec.flags]);
  for (const name of Object.keys(flags)) if (!allowed.has(name)) throw usageError(`${command} takes no --${name}`);
  const args: readonly string[] = spec.args;
  const mandatory = (a: string) => !a.endsWith('?') && !a.endsWith('*');
  if (rest.length < args.filter(mandatory).length) throw usageError(`${command} needs ${args.slice(rest.length).filter(mandatory).map((a) => `<${a}>`).join(' ')}`);
  if (rest.length > args.length && !args.at(-1)?.endsWith('*')) throw usageError(`unexpected argument "${rest[args.length]}"`);
  return { command, args: rest, flags };
}

/** A whole number in [min, max] from a flag, or a usage error naming it. Digits only: no 0x10, 1e3. */
export function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw usageError(`--${name} must be a whole number from ${min} to ${max}`);
  return Number(value);
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90`, `90s`, `30m`, `2h`, `1h30m`, `1d` → seconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const parts = [...t.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) throw usageError(`${what} must look like 90, 90s, 30m, 2h or 1h30m, got "${text}"`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
}

/** Decimal money as the API takes it: digits, at most 6 decimals. */
export function parseAmount(text: string, what = 'amount'): string {
  if (!/^\d+(\.\d{1,6})?$/.test(text)) throw usageError(`${what} must be a decimal number with at most 6 decimals, such as 25 or 2.35, got "${text}"`);
  return text;
}
