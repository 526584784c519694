// Offer search across every RegionBook: the resting asks of online nodes, joined with what
// libSQL knows about each node, then filtered and sorted by the offer query grammar
// (src/market/offer-query.ts). Public and briefly cacheable; no account or node ids leave here.
import { createRoute, z } from '@hono/zod-openapi';
import { limitOfferSearches } from '../auth/rate-limit.ts';
import { GPU_MODEL_IDS, gpuModel } from '../catalog/gpus.ts';
import { REGION_IDS } from '../catalog/regions.ts';
import { errorResponses, jsonContent } from '../contracts/common.ts';
import { iso, MoneyString } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import { limitQuery } from '../db/pagination.ts';
import type { Bindings } from '../env.ts';
import { regionBook } from '../durable/region-book.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { compareOffers, matchesOffer, MAX_QUERY_CHARS, parseOfferQuery, type Filter, type Offer } from '../market/offer-query.ts';
import { formatAmount } from '../money/amount.ts';

const app = router();
const CACHE = 'public, max-age=2';
/** Longest clause echoed back in an error; the rest of an over-long one is cut. */
const MAX_ECHO_CHARS = 100;

const OfferSchema = z
  .object({
    id: z.string().openapi({ description: 'The ask this offer is', example: 'ord_01J8Z3V6Q9K2M4N7P0R5S8T1W3' }),
    region: z.string().openapi({ example: 'us-east' }),
    gpu_model: z.string().openapi({ example: 'h100-80gb' }),
    gpus: z.number().int().openapi({ description: 'GPUs still free on this ask' }),
    price: MoneyString.openapi({ description: 'USD per GPU-hour', example: '2.35' }),
    min_duration_s: z.number().int(),
    max_duration_s: z.number().int(),
    expires_at: z.string(),
    reliability: z.number().openapi({ description: '0–1' }),
    verified: z.boolean(),
    verified_at: z.string().nullable().openapi({ description: 'When the node last passed its challenges (while verified), else null' }),
    vram_gb: z.number().int().openapi({ description: 'Memory per GPU in GB, as the catalog lists the model' }),
    cpu_cores: z.number().int(),
    ram_gb: z.number().int(),
    disk_gb: z.number().int().openapi({ description: 'Free disk' }),
  })
  .openapi('Offer');

const OfferSearchQuery = z
  .object({
    q: z.string().optional().openapi({
      description: `Filters, ANDed: \`field op value\` (= != < <= > >=) or \`field in [a,b]\` / \`field notin [a,b]\`; at most ${MAX_QUERY_CHARS} characters`,
      example: 'gpu_model=h100-80gb gpus>=2 reliability>0.98 region in [us-east,eu-central]',
    }),
    order: z.string().optional().openapi({ description: 'A sortable field, `-` prefixed for descending; default price', example: '-reliability' }),
    limit: limitQuery(200, 50),
  })
  .strict();

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['market'],
    summary: 'Search the resting asks of online nodes in every region',
    request: { query: OfferSearchQuery },
    responses: {
      200: jsonContent(
        z
          .object({
            data: z.array(OfferSchema),
            count: z.number().int().openapi({ description: 'Offers matching q; data holds the first `limit` of them' }),
          })
          .openapi('OfferList'),
        'Offers, cheapest first unless ordered otherwise',
      ),
      ...errorResponses(400, 429),
    },
  }),
  async (c) => {
    const { q = '', order, limit } = c.req.valid('query');
    const parsed = parseOfferQuery(q, order);
    if (!parsed.ok) {
      // The grammar reads q before order, so a q that parses alone means the order was at fault.
      const where = parseOfferQuery(q).ok ? 'order' : 'q';
      const clause = echo(parsed.error.clause);
      const message = `invalid ${where}${clause ? ` '${clause}'` : ''}: ${parsed.error.message}`;
      throw new ApiError('validation_failed', message, { details: [{ path: where, clause, message: parsed.error.message }] });
    }
    const query = parsed.query;

    // Only a valid search is counted: it is the one that asks every book.
    await limitOfferSearches(c);
    const candidates = await restingOffers(c.env, booksFor(query.filters));
    const compare = compareOffers(query);
    const matching = candidates.filter((o) => matchesOffer(query, o.offer)).sort((a, b) => compare(a.offer, b.offer));

    c.header('Cache-Control', CACHE);
    return c.json({ data: matching.slice(0, limit).map(toWire), count: matching.length }, 200);
  },
);

type Ask = Awaited<ReturnType<ReturnType<typeof regionBook>['openAsks']>>[number];
interface Candidate {
  offer: Offer;
  ask: Ask;
  /** When the node last became verified (ms), while it is verified. */
  verifiedAt: number | null;
}

/** Region × model pairs the filters leave possible: `=`/`in` keep only theirs, `!=`/`notin` drop theirs. */
function booksFor(filters: Filter[]): Array<{ region: string; model: string }> {
  const regions = narrow(REGION_IDS, 'region', filters);
  const models = narrow(GPU_MODEL_IDS, 'gpu_model', filters);
  return regions.flatMap((region) => models.map((model) => ({ region, model })));
}

function narrow(all: readonly string[], field: 'region' | 'gpu_model', filters: Filter[]): string[] {
  let ids = [...all];
  for (const f of filters) {
    if (f.field !== field) continue;
    const values = new Set(('values' in f ? f.values : [f.value]).map(String));
    if (f.op === '=' || f.op === 'in') ids = ids.filter((id) => values.has(id));
    else if (f.op === '!=' || f.op === 'notin') ids = ids.filter((id) => !values.has(id));
  }
  return ids;
}

interface NodeFacts {
  reliability: number;
  verified: boolean;
  verifiedAt: number | null;
  cpuCores: number;
  ramGb: number;
  diskGb: number;
  /** Per catalog model: the smallest memory among the node's GPUs of that model, GiB rounded down. */
  vramGb: Map<string, number>;
}

/** Asks of online nodes in `books`, as offers; an ask whose node libSQL does not list is left out. */
async function restingOffers(env: Bindings, books: Array<{ region: string; model: string }>): Promise<Candidate[]> {
  const perBook = await Promise.all(
    books.map(async ({ region, model }) => {
      const asks = await regionBook(env, region, model).openAsks();
      return asks.filter((a) => a.online).map((ask) => ({ region, model, ask }));
    }),
  );
  const asks = perBook.flat();
  if (asks.length === 0) return [];

  const facts = await nodeFacts(env, [...new Set(asks.map((a) => a.ask.nodeId))]);
  const out: Candidate[] = [];
  for (const { region, model, ask } of asks) {
    const node = facts.get(ask.nodeId);
    const vram = node?.vramGb.get(model);
    if (!node || vram === undefined) continue;
    out.push({
      ask,
      verifiedAt: node.verifiedAt,
      offer: {
        id: ask.id,
        region,
        gpu_model: model,
        gpus: ask.freeGpus,
        price: BigInt(ask.price),
        reliability: node.reliability,
        verified: node.verified,
        vram_gb: vram,
        cpu_cores: node.cpuCores,
        ram_gb: node.ramGb,
        disk_gb: node.diskGb,
      },
    });
  }
  return out;
}

/** One query for every node at once; the ids travel as one JSON array, so no bound-parameter limit applies. */
async function nodeFacts(env: Bindings, nodeIds: string[]): Promise<Map<string, NodeFacts>> {
  const rs = await connection(env).client.execute({
    sql: `SELECT n.id, n.machine, n.reliability_ppm, n.verified, n.verified_at, g.model, min(g.memory_mib) AS memory_mib
          FROM nodes n JOIN node_gpus g ON g.node_id = n.id
          WHERE n.id IN (SELECT value FROM json_each(?)) AND n.status != 'revoked' AND g.model IS NOT NULL
          GROUP BY n.id, g.model`,
    args: [JSON.stringify(nodeIds)],
  });
  const facts = new Map<string, NodeFacts>();
  for (const row of rs.rows) {
    const id = String(row.id);
    let node = facts.get(id);
    if (!node) {
      const machine = parseMachine(String(row.machine));
      node = {
        reliability: Number(row.reliability_ppm) / 1_000_000,
        verified: Number(row.verified) === 1,
        verifiedAt: Number(row.verified) === 1 && row.verified_at !== null ? Number(row.verified_at) : null,
        cpuCores: wholeNumber(machine.cpu_cores),
        ramGb: Math.floor(wholeNumber(machine.ram_mib) / 1024),
        diskGb: wholeNumber(machine.disk_free_gib),
        vramGb: new Map(),
      };
      facts.set(id, node);
    }
    // The model's nominal memory (an H100 80GB reports 79.6 GiB): what renters search by.
    node.vramGb.set(String(row.model), gpuModel(String(row.model))?.vramGb ?? Math.floor(Number(row.memory_mib) / 1024));
  }
  return facts;
}

function parseMachine(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Registration validates these; a row from before that reads as 0 rather than failing the search. */
function wholeNumber(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : 0;
}

function toWire({ offer, ask, verifiedAt }: Candidate): z.infer<typeof OfferSchema> {
  return {
    id: offer.id,
    region: offer.region,
    gpu_model: offer.gpu_model,
    gpus: offer.gpus,
    price: formatAmount(offer.price),
    min_duration_s: ask.minDurationS,
    max_duration_s: ask.maxDurationS,
    expires_at: iso(ask.expiresAt)!,
    reliability: offer.reliability,
    verified: offer.verified,
    verified_at: iso(verifiedAt),
    vram_gb: offer.vram_gb,
    cpu_cores: offer.cpu_cores,
    ram_gb: offer.ram_gb,
    disk_gb: offer.disk_gb,
  };
}

function echo(clause: string): string {
  return clause.length > MAX_ECHO_CHARS ? `${clause.slice(0, MAX_ECHO_CHARS)}…` : clause;
}

export default app;
