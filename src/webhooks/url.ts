// Where an endpoint may point. Pure: no I/O; the environment is passed in. Checked when an
// endpoint is created and again before every delivery.
//
// The host rules catch what the URL itself says (names and IP literals). A public name that
// resolves to a private address is not caught here; Workers' fetch cannot reach private
// networks, which covers that case in production.

export const MAX_URL_LENGTH = 2048;

export type UrlProblem = 'too_long' | 'malformed' | 'scheme' | 'https_required' | 'credentials' | 'loopback' | 'private_address' | 'local_name';

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
 * `hostname` as the URL parser left it: lower-case, IPv4 in dotted decimal (it already turned
 * `0x7f.1` or `2130706433` into `127.0.0.1`), IPv6 in brackets and compressed hex.
 */
export function hostProblem(hostname: string): UrlProblem | null {
  const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  if (host.startsWith('[') && host.endsWith(']')) {
    const groups = parseIpv6(host.slice(1, -1));
    return groups ? ipv6Problem(groups) : 'malformed';
  }
  const v4 = parseIpv4(host);
  if (v4) return ipv4Problem(v4);
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
  if (host === 'local' || host.endsWith('.local') || host === 'internal' || host.endsWith('.internal')) return 'local_name';
  return null;
}

type Ipv4 = [number, number, number, number];

function parseIpv4(host: string): Ipv4 | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? (parts as Ipv4) : null;
}

function ipv4Problem([a, b]: Ipv4): UrlProblem | null {
  if (a === 127) return 'loopback';
  if (a === 0 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254)) return 'private_address';
  return null;
}

/** Eight 16-bit groups, or null. Accepts `::` compression and a trailing dotted IPv4. */
function parseIpv6(text: string): number[] | null {
  let body = text;
  const tail: number[] = [];
  const dotted = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(body);
  if (dotted) {
    const v4 = parseIpv4(dotted[2]!);
    if (!v4) return null;
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    body = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const known = head.length + rest.length + tail.length;
  if ([...head, ...rest].some(Number.isNaN)) return null;
  if (halves.length === 1) return known === 8 ? [...head, ...tail] : null;
  if (known > 7) return null;
  return [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
}

function ipv6Problem(g: number[]): UrlProblem | null {
  const zerosUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zerosUpTo(7) && g[7] === 1) return 'loopback';
  if (zerosUpTo(8)) return 'private_address';
  // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address.
  if ((zerosUpTo(5) && g[5] === 0xffff) || (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0))) {
    return ipv4Problem([g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff]);
  }
  if ((g[0]! & 0xfe00) === 0xfc00) return 'private_address';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'private_address';
  return null;
}
