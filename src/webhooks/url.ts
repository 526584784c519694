// Where an endpoint may point. Pure: no I/O; the environment is passed in. Checked when an
// endpoint is created and again before every delivery.
//
// The host rules catch what the URL itself says (names and IP literals). A public name that
// resolves to a private address is not caught here; Workers' fetch cannot reach private
// networks, which covers that case in production.

export const MAX_URL_LENGTH = 2048;

export type UrlProblem =
  | 'too_long'
  | 'malformed'
  | 'scheme'
  | 'https_required'
  | 'credentials'
  | 'loopback'
  | 'private_address'
  | 'reserved_address'
  | 'local_name';

export type UrlCheck = { ok: true; url: string } | { ok: false; problem: UrlProblem };

export function describeUrlProblem(problem: UrlProblem): string {
  switch (problem) {
    case 'too_long':
      return `must be at most ${MAX_URL_LENGTH} characters`;
    case 'malformed':
      return 'must be an absolute URL';
    case 'scheme':
      return 'must be an http or https URL';
    case 'https_required':
      return 'must use https (http is accepted only on development and test servers)';
    case 'credentials':
      return 'must not contain a user name or password';
    case 'loopback':
      return 'must not point at localhost or a loopback address';
    case 'private_address':
      return 'must not point at a private, link-local or unspecified address';
    case 'reserved_address':
      return 'must not point at a multicast, documentation, benchmarking, transition (6to4, NAT64, Teredo) or otherwise reserved address';
    case 'local_name':
      return 'must not use a .local or .internal host name';
  }
}

/** Development and test servers deliver to local sinks; every other environment may not. */
function isLocalEnvironment(environment: string): boolean {
  return environment === 'development' || environment === 'test';
}

/** Returns the normalised URL to store and call, or why it is refused. */
export function checkEndpointUrl(raw: string, environment: string): UrlCheck {
  if (raw.length > MAX_URL_LENGTH) return { ok: false, problem: 'too_long' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, problem: 'malformed' };
  }
  if (url.href.length > MAX_URL_LENGTH) return { ok: false, problem: 'too_long' };
  const local = isLocalEnvironment(environment);
  if (url.protocol === 'http:') {
    if (!local) return { ok: false, problem: 'https_required' };
  } else if (url.protocol !== 'https:') {
    return { ok: false, problem: 'scheme' };
  }
  if (url.username || url.password) return { ok: false, problem: 'credentials' };
  if (!local) {
    const problem = hostProblem(url.hostname);
    if (problem) return { ok: false, problem };
  }
  return { ok: true, url: url.href };
}

/**
 * Why `hostname` may not be called, or null. Takes the host as the URL parser left it
 * (IPv6 in brackets) and also any other spelling of an IPv4 address (`0x7f.1`, `2130706433`,
 * `0177.0.0.1`), read the way the URL standard reads it.
 */
export function hostProblem(hostname: string): UrlProblem | null {
  const host = (hostname.endsWith('.') ? hostname.slice(0, -1) : hostname).toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) {
    const v6 = parseIpv6(host.slice(1, -1));
    return v6 === null ? 'malformed' : ipv6Problem(v6);
  }
  const v4 = parseIpv4(host);
  if (v4 === 'invalid') return 'malformed';
  if (v4 !== null) return ipv4Problem(v4);
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
  if (host === 'local' || host.endsWith('.local') || host === 'internal' || host.endsWith('.internal')) return 'local_name';
  return null;
}

// The IANA IPv4 and IPv6 special-purpose address registries, less the few entries that are
// globally reachable services no webhook would call (anycast relays, AS112).
const V4_SPECIAL: ReadonlyArray<readonly [string, UrlProblem]> = [
  ['0.0.0.0/8', 'private_address'], // "this network"
  ['10.0.0.0/8', 'private_address'],
  ['100.64.0.0/10', 'private_address'], // shared address space (carrier-grade NAT)
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'private_address'], // link-local, cloud metadata services
  ['172.16.0.0/12', 'private_address'],
  ['192.0.0.0/24', 'reserved_address'], // IETF protocol assignments
  ['192.0.2.0/24', 'reserved_address'], // documentation
  ['192.88.99.0/24', 'reserved_address'], // deprecated 6to4 relay anycast
  ['192.168.0.0/16', 'private_address'],
  ['198.18.0.0/15', 'reserved_address'], // benchmarking
  ['198.51.100.0/24', 'reserved_address'], // documentation
  ['203.0.113.0/24', 'reserved_address'], // documentation
  ['224.0.0.0/4', 'reserved_address'], // multicast
  ['240.0.0.0/4', 'reserved_address'], // reserved, and the limited broadcast address
];

// Checked in order, after loopback, unspecified and the forms that carry an IPv4 address.
// Whatever is left must be global unicast (2000::/3).
const V6_SPECIAL: ReadonlyArray<readonly [string, UrlProblem]> = [
  ['64:ff9b:1::/48', 'reserved_address'], // local-use IPv4/IPv6 translation
  ['100::/64', 'reserved_address'], // discard-only
  ['2001::/23', 'reserved_address'], // IETF protocol assignments, Teredo (2001::/32) included
  ['2001:db8::/32', 'reserved_address'], // documentation
  ['3fff::/20', 'reserved_address'], // documentation
  ['fc00::/7', 'private_address'], // unique local
  ['fe80::/10', 'private_address'], // link-local
  ['fec0::/10', 'private_address'], // deprecated site-local
  ['ff00::/8', 'reserved_address'], // multicast
];

interface Cidr {
  base: bigint;
  bits: number;
  problem: UrlProblem;
}

function cidrs(list: ReadonlyArray<readonly [string, UrlProblem]>, parse: (text: string) => bigint | null, width: number): Cidr[] {
  return list.map(([text, problem]) => {
    const [addr, bits] = text.split('/') as [string, string];
    const base = parse(addr);
    if (base === null) throw new Error(`bad range ${text}`);
    return { base: base >> BigInt(width - Number(bits)), bits: Number(bits), problem };
  });
}

const inRange = (value: bigint, width: number, c: Cidr) => value >> BigInt(width - c.bits) === c.base;

const V4_RANGES = cidrs(V4_SPECIAL, (t) => {
  const v = parseIpv4(t);
  return typeof v === 'number' ? BigInt(v) : null;
}, 32);
const V6_RANGES = cidrs(V6_SPECIAL, parseIpv6, 128);

function ipv4Problem(addr: number): UrlProblem | null {
  const value = BigInt(addr);
  return V4_RANGES.find((c) => inRange(value, 32, c))?.problem ?? null;
}

/**
 * An IPv4 address as a number, null for a name, or 'invalid' for a host the URL standard
 * would read as an IPv4 address and refuse (its last label is numeric but it is out of range).
 * Parts may be decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes.
 */
function parseIpv4(host: string): number | 'invalid' | null {
  const parts = host.split('.');
  if (parts.at(-1) === '' && parts.length > 1) parts.pop();
  // As the URL standard decides: a host whose last label is all digits (or 0x hex) is an address.
  if (!/^([0-9]+|0x[0-9a-f]*)$/i.test(parts.at(-1)!)) return null;
  const numbers = parts.map(ipv4Part);
  if (parts.length > 4 || numbers.some((n) => n === null)) return 'invalid';
  const ns = numbers as number[];
  const last = ns.pop()!;
  if (ns.some((n) => n > 255) || last >= 256 ** (4 - ns.length)) return 'invalid';
  return ns.reduce((acc, n, i) => acc + n * 256 ** (3 - i), 0) + last;
}

function ipv4Part(part: string): number | null {
  if (/^0x[0-9a-f]*$/i.test(part)) return part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
  if (/^0[0-7]+$/.test(part)) return Number.parseInt(part.slice(1), 8);
  if (/^(0|[1-9][0-9]*)$/.test(part)) return Number(part);
  return null;
}

/** A 128-bit address, or null. Accepts `::` compression and a trailing dotted IPv4. */
function parseIpv6(text: string): bigint | null {
  let body = text;
  const tail: number[] = [];
  const dotted = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(body);
  if (dotted) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(dotted[2]!)!;
    const bytes = m.slice(1).map(Number);
    if (bytes.some((b) => b > 255)) return null;
    tail.push((bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!);
    body = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const known = head.length + rest.length + tail.length;
  if ([...head, ...rest].some(Number.isNaN)) return null;
  let groups: number[];
  if (halves.length === 1) {
    if (known !== 8) return null;
    groups = [...head, ...tail];
  } else {
    if (known > 7) return null;
    groups = [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
  }
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

const low32 = (v: bigint) => Number(v & 0xffff_ffffn);

function ipv6Problem(v: bigint): UrlProblem | null {
  if (v === 1n) return 'loopback';
  if (v === 0n) return 'private_address';
  // Forms that carry an IPv4 address: IPv4-compatible (::a.b.c.d, deprecated), IPv4-mapped
  // (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4
  // (2002:AABB:CCDD::). A webhook names the IPv4 address itself; these are refused either way,
  // with the embedded address's own reason when it has one.
  const top96 = v >> 32n;
  if (top96 === 0n || top96 === 0xffffn || top96 === 0xffff0000n || top96 === 0x64ff9b0000000000000000n) {
    return ipv4Problem(low32(v)) ?? 'reserved_address';
  }
  if (v >> 112n === 0x2002n) return ipv4Problem(Number((v >> 80n) & 0xffff_ffffn)) ?? 'reserved_address';
  const special = V6_RANGES.find((c) => inRange(v, 128, c));
  if (special) return special.problem;
  // Everything outside global unicast is unassigned or special.
  return v >> 125n === 1n ? null : 'reserved_address';
}
