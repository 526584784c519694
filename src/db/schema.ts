import { sql } from 'drizzle-orm';
import { check, index, integer, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/** Times are integer milliseconds since the epoch (UTC). */
const createdAt = () => integer('created_at').notNull().default(sql`(CAST(unixepoch('subsec') * 1000 AS INTEGER))`);

export const accounts = sqliteTable(
  'accounts',
  {
    id: text('id').primaryKey(),
    /** Lower-cased and trimmed; unique. */
    email: text('email').notNull(),
    /** `pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>` */
    passwordHash: text('password_hash').notNull(),
    /** JSON array of roles. */
    roles: text('roles', { mode: 'json' }).$type<string[]>().notNull(),
    status: text('status', { enum: ['active', 'suspended'] }).notNull().default('active'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('accounts_email_uq').on(t.email)],
);

export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    name: text('name').notNull(),
    /** The first characters of the key, shown in listings so people can tell keys apart. */
    prefix: text('prefix').notNull(),
    /** SHA-256 of the whole key, hex. The key itself is never stored. */
    hash: text('hash').notNull(),
    scopes: text('scopes', { mode: 'json' }).$type<string[]>().notNull(),
    createdAt: createdAt(),
    lastUsedAt: integer('last_used_at'),
    expiresAt: integer('expires_at'),
    revokedAt: integer('revoked_at'),
  },
  (t) => [uniqueIndex('api_keys_hash_uq').on(t.hash), index('api_keys_account_idx').on(t.accountId)],
);

export type AccountRow = typeof accounts.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;

/** Operator actions, kept for accountability. */
export const auditLog = sqliteTable(
  'audit_log',
  {
    id: text('id').primaryKey(),
    actorAccountId: text('actor_account_id').notNull(),
    action: text('action').notNull(),
    target: text('target').notNull(),
    reason: text('reason').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('audit_log_target_idx').on(t.target)],
);

// ── Money ────────────────────────────────────────────────────────────────────────────
// Amounts and balances are integer micro-units. Per-operation amounts (≤ 1e15) fit a JS number;
// balances are read through the bigint client (db/client.ts `money`) so they stay exact.

/** One row per ledger account (`<owner>:<asset>:<kind>`), holding its running balance. */
export const ledgerAccounts = sqliteTable(
  'ledger_accounts',
  {
    id: text('id').primaryKey(),
    ownerId: text('owner_id').notNull(),
    asset: text('asset').notNull(),
    kind: text('kind').notNull(),
    allowNegative: integer('allow_negative', { mode: 'boolean' }).notNull().default(false),
    balance: integer('balance').notNull().default(sql`0`),
    createdAt: createdAt(),
  },
  (t) => [
    index('ledger_accounts_owner_idx').on(t.ownerId),
    // The last line of defence: an update that would overdraw a user fails the whole transaction.
    check('ledger_balance_non_negative', sql`${t.balance} >= 0 OR ${t.allowNegative} = 1`),
  ],
);

export const ledgerTransactions = sqliteTable(
  'ledger_transactions',
  {
    id: text('id').primaryKey(),
    idempotencyKey: text('idempotency_key').notNull(),
    /** SHA-256 of the canonical spec: the same key with another request is refused. */
    requestHash: text('request_hash').notNull(),
    kind: text('kind').notNull(),
    reference: text('reference'),
    reverses: text('reverses'),
    memo: text('memo'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('ledger_transactions_key_uq').on(t.idempotencyKey),
    // Only reversals have one: no other transaction writes an entry here.
    uniqueIndex('ledger_transactions_reverses_uq').on(t.reverses).where(sql`reverses IS NOT NULL`),
    index('ledger_transactions_reference_idx').on(t.reference),
  ],
);

export const ledgerEntries = sqliteTable(
  'ledger_entries',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    transactionId: text('transaction_id').notNull(),
    accountId: text('account_id').notNull(),
    /** Copied from the account so an owner's statement is one index range. */
    ownerId: text('owner_id').notNull(),
    accountKind: text('account_kind').notNull(),
    asset: text('asset').notNull(),
    amount: integer('amount').notNull(),
    balanceAfter: integer('balance_after').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('ledger_entries_owner_idx').on(t.ownerId, t.id), index('ledger_entries_transaction_idx').on(t.transactionId)],
);

export const deposits = sqliteTable(
  'deposits',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id').notNull(),
    /** The caller's Idempotency-Key, unique per account. */
    idempotencyKey: text('idempotency_key').notNull(),
    requestHash: text('request_hash').notNull(),
    asset: text('asset').notNull(),
    method: text('method', { enum: ['card', 'usdc', 'grid'] }).notNull(),
    /** Requested amount; for chain deposits the credited amount is what arrived. */
    amount: integer('amount').notNull(),
    creditedAmount: integer('credited_amount'),
    status: text('status', { enum: ['pending', 'credited', 'failed'] }).notNull().default('pending'),
    /** Stripe Checkout Session id, or `<chain>:<tx hash>:<log index>`. */
    externalRef: text('external_ref'),
    checkoutUrl: text('checkout_url'),
    transactionId: text('transaction_id'),
    createdAt: createdAt(),
    creditedAt: integer('credited_at'),
  },
  (t) => [
    uniqueIndex('deposits_key_uq').on(t.accountId, t.idempotencyKey),
    index('deposits_account_idx').on(t.accountId, t.createdAt),
    index('deposits_external_idx').on(t.externalRef),
  ],
);

/** Every on-chain transfer the chain watcher reported, credited at most once. */
export const chainTransfers = sqliteTable(
  'chain_transfers',
  {
    id: text('id').primaryKey(),
    chain: text('chain').notNull(),
    txHash: text('tx_hash').notNull(),
    logIndex: integer('log_index').notNull(),
    asset: text('asset').notNull(),
    amount: integer('amount').notNull(),
    toAddress: text('to_address').notNull(),
    memo: text('memo').notNull(),
    /** Null when the memo matches no account: kept for operators, never credited. */
    accountId: text('account_id'),
    confirmations: integer('confirmations').notNull(),
    status: text('status', { enum: ['pending', 'credited', 'unmatched'] }).notNull(),
    depositId: text('deposit_id'),
    createdAt: createdAt(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('chain_transfers_uq').on(t.chain, t.txHash, t.logIndex)],
);

export const withdrawals = sqliteTable(
  'withdrawals',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    requestHash: text('request_hash').notNull(),
    asset: text('asset').notNull(),
    amount: integer('amount').notNull(),
    destination: text('destination').notNull(),
    status: text('status', { enum: ['pending', 'paid', 'failed'] }).notNull().default('pending'),
    failureReason: text('failure_reason'),
    payoutRef: text('payout_ref'),
    createdAt: createdAt(),
    settledAt: integer('settled_at'),
  },
  (t) => [uniqueIndex('withdrawals_key_uq').on(t.accountId, t.idempotencyKey), index('withdrawals_account_idx').on(t.accountId, t.createdAt)],
);

/** Gateway events already handled (Stripe event ids), so a redelivery does nothing. */
export const webhookEvents = sqliteTable(
  'webhook_events',
  {
    source: text('source').notNull(),
    eventId: text('event_id').notNull(),
    type: text('type').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('webhook_events_uq').on(t.source, t.eventId)],
);

// ── Nodes and heartbeats ─────────────────────────────────────────────────────────────

/** A provider machine, registered by gridlease-runner. */
export const nodes = sqliteTable(
  'nodes',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id').notNull(),
    region: text('region').notNull(),
    hostname: text('hostname').notNull(),
    /** The runner's last reported machine (CPU, RAM, disk, runner version) as JSON. */
    machine: text('machine', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: ['registered', 'online', 'offline', 'draining', 'revoked'] }).notNull().default('registered'),
    /** Bumped on re-registration or revocation; node tokens carry it, older ones stop working. */
    tokenVersion: integer('token_version').notNull().default(1),
    /** Parts per million; starts at 0.9 and is adjusted by uptime and inspections. */
    reliabilityPpm: integer('reliability_ppm').notNull().default(900_000),
    verified: integer('verified', { mode: 'boolean' }).notNull().default(false),
    /** When the node last became verified, and until when that holds (ms); null when never or cleared. */
    verifiedAt: integer('verified_at'),
    verifiedUntil: integer('verified_until'),
    /** The node's Ed25519 public key (raw, base64url), replaced at every registration; null for nodes registered before node keys. */
    publicKey: text('public_key'),
    /** How renters reach the node's workloads (gridlease-runner --public-host); null: not reachable from outside. */
    publicHost: text('public_host'),
    lastHeartbeatAt: integer('last_heartbeat_at'),
    createdAt: createdAt(),
  },
  (t) => [index('nodes_account_idx').on(t.accountId, t.createdAt)],
);

export const nodeGpus = sqliteTable(
  'node_gpus',
  {
    nodeId: text('node_id').notNull(),
    index: integer('gpu_index').notNull(),
    uuid: text('uuid').notNull(),
    name: text('name').notNull(),
    /** Catalog model id, or null when the card is not in the catalog (not listable). */
    model: text('model'),
    memoryMib: integer('memory_mib').notNull(),
    driver: text('driver').notNull(),
  },
  (t) => [uniqueIndex('node_gpus_pk').on(t.nodeId, t.index), index('node_gpus_uuid_idx').on(t.uuid)],
);

/**
 * Platform challenges sent to a node (docs/inspections.md, "Platform challenges"). `challenge` is
 * exactly what the node was sent; every status change is a conditional UPDATE from the status
 * before it, and `decision` marks the one transition that applied a decision's effects.
 */
export const nodeChallenges = sqliteTable(
  'node_challenges',
  {
    id: text('id').primaryKey(),
    nodeId: text('node_id').notNull(),
    kind: text('kind', { enum: ['identity', 'capacity'] }).notNull(),
    challenge: text('challenge', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: ['issued', 'committed', 'passed', 'failed', 'expired'] }).notNull().default('issued'),
    issuedAt: integer('issued_at').notNull(),
    deadline: integer('deadline').notNull(),
    commitment: text('commitment', { mode: 'json' }).$type<Record<string, unknown>>(),
    commitmentSignature: text('commitment_signature'),
    openSeed: text('open_seed'),
    openingRequest: text('opening_request', { mode: 'json' }).$type<Record<string, unknown>>(),
    openDeadline: integer('open_deadline'),
    answer: text('answer', { mode: 'json' }).$type<Record<string, unknown>>(),
    answerSignature: text('answer_signature'),
    /** A capacity challenge's openings answer, kept so that its report can be re-checked by anyone. */
    openings: text('openings', { mode: 'json' }).$type<Record<string, unknown>>(),
    /** The node's key when the challenge was decided: a later join may change the node's key. */
    nodePublicKey: text('node_public_key'),
    reasons: text('reasons', { mode: 'json' }).$type<string[]>(),
    decision: text('decision'),
    decidedAt: integer('decided_at'),
  },
  (t) => [
    index('node_challenges_node_idx').on(t.nodeId, t.issuedAt),
    index('node_challenges_open_idx').on(t.deadline).where(sql`status IN ('issued', 'committed')`),
  ],
);

/** One-time join tokens: only the hash is kept. */
export const joinTokens = sqliteTable('join_tokens', {
  id: text('id').primaryKey(),
  hash: text('hash').notNull().unique(),
  accountId: text('account_id').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at'),
  nodeId: text('node_id'),
  createdAt: createdAt(),
});

/** Heartbeat batches already applied: a redelivered batch has no second effect. */
export const heartbeatBatches = sqliteTable('heartbeat_batches', {
  id: text('id').primaryKey(),
  heartbeats: integer('heartbeats').notNull(),
  processedAt: integer('processed_at').notNull(),
});

/** Per-node, per-minute roll-ups of heartbeat metrics. */
export const nodeMetricsMinute = sqliteTable(
  'node_metrics_minute',
  {
    nodeId: text('node_id').notNull(),
    /** Minutes since the epoch. */
    minute: integer('minute').notNull(),
    heartbeats: integer('heartbeats').notNull(),
    utilSum: real('util_sum').notNull(),
    utilSamples: integer('util_samples').notNull(),
    memUsedMaxMib: integer('mem_used_max_mib'),
    tempMaxC: real('temp_max_c'),
    powerSumW: real('power_sum_w').notNull(),
    powerSamples: integer('power_samples').notNull(),
  },
  (t) => [uniqueIndex('node_metrics_minute_pk').on(t.nodeId, t.minute)],
);

/**
 * Per-GPU, per-minute roll-ups of heartbeat metrics: what a renter sees of the GPUs its lease
 * holds. Averages are sums over samples; a metric no heartbeat reported stays NULL (max) or has
 * 0 samples (average), never a made-up 0. Kept for GPU_METRICS_RETENTION_MIN (src/heartbeats/gpu-metrics.ts).
 */
export const gpuMetricsMinute = sqliteTable(
  'gpu_metrics_minute',
  {
    nodeId: text('node_id').notNull(),
    /** Minutes since the epoch. */
    minute: integer('minute').notNull(),
    gpuIndex: integer('gpu_index').notNull(),
    /** Heartbeats that reported this GPU in this minute. */
    samples: integer('samples').notNull(),
    utilSum: real('util_sum').notNull(),
    utilSamples: integer('util_samples').notNull(),
    memMaxMib: integer('mem_max_mib'),
    tempMaxC: real('temp_max_c'),
    powerSumW: real('power_sum_w').notNull(),
    powerSamples: integer('power_samples').notNull(),
  },
  // (node, minute) first: a lease reads a node's minute range, and pruning deletes one too.
  (t) => [uniqueIndex('gpu_metrics_minute_pk').on(t.nodeId, t.minute, t.gpuIndex)],
);

/** Heartbeat-confirmed seconds online per node and UTC day: the input to uptime rewards. */
export const nodeUptimeDaily = sqliteTable(
  'node_uptime_daily',
  {
    nodeId: text('node_id').notNull(),
    /** YYYY-MM-DD (UTC). */
    day: text('day').notNull(),
    seconds: integer('seconds').notNull(),
    heartbeats: integer('heartbeats').notNull(),
  },
  (t) => [uniqueIndex('node_uptime_daily_pk').on(t.nodeId, t.day)],
);

// ── Orders and leases ────────────────────────────────────────────────────────────────

/**
 * Every order as its owner placed it. The RegionBook object is the authority on whether an
 * order rests; this row holds the terms, the escrow and the last status the book reported
 * (kept in step through the book's outbox), for listing and for the money.
 */
export const orders = sqliteTable(
  'orders',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    requestHash: text('request_hash').notNull(),
    side: text('side', { enum: ['buy', 'sell'] }).notNull(),
    region: text('region').notNull(),
    gpuModel: text('gpu_model').notNull(),
    gpus: integer('gpus').notNull(),
    /** Micro-USD per GPU-hour. */
    price: integer('price').notNull(),
    tif: text('tif', { enum: ['gtc', 'ioc'] }).notNull(),
    /** Buy only. */
    durationS: integer('duration_s'),
    payWith: text('pay_with'),
    /** What is held in escrow for a buy: the maximum cost in `pay_with`. */
    holdAmount: integer('hold_amount'),
    minReliabilityPpm: integer('min_reliability_ppm'),
    verifiedOnly: integer('verified_only', { mode: 'boolean' }),
    workload: text('workload', { mode: 'json' }).$type<Record<string, unknown>>(),
    /** Sell only. */
    nodeId: text('node_id'),
    minDurationS: integer('min_duration_s'),
    maxDurationS: integer('max_duration_s'),
    /** The whole order as the book received it, so it can be placed again after a failure. */
    book: text('book', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: ['open', 'filled', 'cancelled', 'expired'] }).notNull().default('open'),
    expiresAt: integer('expires_at').notNull(),
    createdAt: createdAt(),
    closedAt: integer('closed_at'),
  },
  (t) => [
    uniqueIndex('orders_key_uq').on(t.accountId, t.idempotencyKey),
    index('orders_account_idx').on(t.accountId, t.createdAt),
    index('orders_account_status_idx').on(t.accountId, t.status, t.createdAt),
    // Only sells have a node (tellBooks looks up open asks by node): a buy writes no entry here.
    index('orders_node_idx').on(t.nodeId, t.status).where(sql`side = 'sell'`),
    // The sweep of orders whose placement stopped half-way walks open orders by age.
    index('orders_open_created_idx').on(t.createdAt, t.id).where(sql`status = 'open'`),
  ],
);

/** Where a periodic job has got to: the last row it handled, in its own order. */
export const jobCursors = sqliteTable('job_cursors', {
  name: text('name').primaryKey(),
  at: integer('at').notNull(),
  id: text('id').notNull(),
});

/** A lease, as created from one fill; the Lease object holds its live state. */
export const leases = sqliteTable(
  'leases',
  {
    id: text('id').primaryKey(),
    tradeId: text('trade_id').notNull(),
    bidId: text('bid_id').notNull(),
    askId: text('ask_id').notNull(),
    renterId: text('renter_id').notNull(),
    providerId: text('provider_id').notNull(),
    nodeId: text('node_id').notNull(),
    region: text('region').notNull(),
    gpuModel: text('gpu_model').notNull(),
    gpus: integer('gpus').notNull(),
    gpuIndices: text('gpu_indices', { mode: 'json' }).$type<number[]>().notNull(),
    /** Micro-USD per GPU-hour: the trade price. */
    price: integer('price').notNull(),
    durationS: integer('duration_s').notNull(),
    asset: text('asset').notNull(),
    /** The lease's whole cost in `asset`, held in escrow until settled. */
    amount: integer('amount').notNull(),
    state: text('state').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('leases_trade_uq').on(t.tradeId),
    index('leases_renter_idx').on(t.renterId, t.createdAt),
    index('leases_provider_idx').on(t.providerId, t.createdAt),
    // Which books hold a node's live leases, on every heartbeat batch (src/nodes/books.ts).
    index('leases_node_idx').on(t.nodeId, t.state),
  ],
);

// ── Webhooks we send ─────────────────────────────────────────────────────────────────

/** A renter's webhook endpoint: where events go and which ones. */
export const webhookEndpoints = sqliteTable(
  'webhook_endpoints',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id').notNull(),
    /** Normalised by src/webhooks/url.ts; checked again before every delivery. */
    url: text('url').notNull(),
    /** JSON array of event types. */
    events: text('events', { mode: 'json' }).$type<string[]>().notNull(),
    description: text('description'),
    /**
     * The signing secret (`whsec_…`), stored as is, not hashed or encrypted: every delivery is
     * signed with it, so it must be recoverable. It is returned once, when the endpoint is
     * created, and never again.
     */
    secret: text('secret').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('webhook_endpoints_account_idx').on(t.accountId, t.createdAt)],
);

/**
 * One event for one endpoint, recorded once (unique endpoint × event) and carried by one queue
 * message. Each attempt updates the row: how many, the last status or error, and the outcome.
 */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    /** Derived from (endpoint, event): the same delivery always has the same id. */
    id: text('id').primaryKey(),
    endpointId: text('endpoint_id').notNull(),
    accountId: text('account_id').notNull(),
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    /** The JSON body, byte for byte what every attempt sends. */
    payload: text('payload').notNull(),
    /** `failed`: the queue's last retry failed too; nothing more will be tried. */
    state: text('state', { enum: ['pending', 'delivered', 'failed'] }).notNull().default('pending'),
    /** Set once the queue has the message; an emit of the same event publishes rows still unset. */
    published: integer('published', { mode: 'boolean' }).notNull().default(false),
    attempts: integer('attempts').notNull().default(0),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    lastAttemptAt: integer('last_attempt_at'),
    deliveredAt: integer('delivered_at'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('webhook_deliveries_uq').on(t.endpointId, t.eventId), index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.createdAt)],
);

/**
 * An inspector's bond movements. A `bond` row is written with its ledger transaction
 * (available → bonded); an `unbond` row starts `pending` with the money still bonded (and
 * slashable) and becomes `released` when the cron posts bonded → available after `release_at`.
 * Unique per account × kind × Idempotency-Key, so each request moves money once.
 */
export const inspectorBonds = sqliteTable(
  'inspector_bonds',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id').notNull(),
    kind: text('kind', { enum: ['bond', 'unbond'] }).notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    requestHash: text('request_hash').notNull(),
    /** GRID micro-units. */
    amount: integer('amount').notNull(),
    status: text('status', { enum: ['bonded', 'pending', 'released'] }).notNull(),
    releaseAt: integer('release_at'),
    releasedAt: integer('released_at'),
    /** The ledger transaction that moved the money: the bond itself, or an unbonding's release. */
    transactionId: text('transaction_id'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('inspector_bonds_key_uq').on(t.accountId, t.kind, t.idempotencyKey),
    index('inspector_bonds_account_idx').on(t.accountId, t.status),
    index('inspector_bonds_due_idx').on(t.status, t.releaseAt),
    check('inspector_bonds_amount_positive', sql`${t.amount} > 0`),
  ],
);

// ── Inspections ──────────────────────────────────────────────────────────────────────

/** An inspector's Ed25519 key (raw, base64url) that signs its verdicts; one account per key. */
export const inspectorKeys = sqliteTable(
  'inspector_keys',
  {
    accountId: text('account_id').primaryKey(),
    publicKey: text('public_key').notNull(),
    createdAt: createdAt(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('inspector_keys_key_uq').on(t.publicKey)],
);

/**
 * An inspection (docs/inspections.md, "Inspectors"): a decided challenge's transcript, or a decoy,
 * put to a panel of bonded inspectors. `status` moves open → decided once, by a conditional
 * UPDATE; `settled_at` is set when every assignment's payment or slash has been posted.
 */
export const inspections = sqliteTable(
  'inspections',
  {
    id: text('id').primaryKey(),
    /** The challenge inspected; null for a decoy. */
    challengeId: text('challenge_id'),
    nodeId: text('node_id').notNull(),
    kind: text('kind', { enum: ['identity', 'capacity'] }).notNull(),
    decoy: integer('decoy', { mode: 'boolean' }).notNull().default(false),
    /** A decoy's known verdict. */
    expect: text('expect', { enum: ['pass', 'fail'] }),
    transcript: text('transcript', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    /** The draw: its seed and inputs, the candidate pool with weights, and the panel. */
    draw: text('draw', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: ['open', 'decided'] }).notNull().default('open'),
    commitDeadline: integer('commit_deadline').notNull(),
    revealDeadline: integer('reveal_deadline').notNull(),
    outcome: text('outcome', { enum: ['pass', 'fail'] }),
    basis: text('basis', { enum: ['recomputation', 'decoy'] }),
    /** The revealed verdicts' majority (null on a tie or none); it disagreeing with the outcome is recorded, not obeyed. */
    majority: text('majority', { enum: ['pass', 'fail'] }),
    reasons: text('reasons', { mode: 'json' }).$type<string[]>(),
    createdAt: integer('created_at').notNull(),
    decidedAt: integer('decided_at'),
    settledAt: integer('settled_at'),
  },
  (t) => [
    uniqueIndex('inspections_challenge_uq').on(t.challengeId).where(sql`challenge_id IS NOT NULL`),
    index('inspections_node_idx').on(t.nodeId, t.decidedAt),
    index('inspections_open_idx').on(t.revealDeadline).where(sql`status = 'open'`),
    index('inspections_unsettled_idx').on(t.decidedAt).where(sql`status = 'decided' AND settled_at IS NULL`),
  ],
);

/** One inspector's part in one inspection: its commitment, its revealed and signed verdict, and what it earned. */
export const inspectionAssignments = sqliteTable(
  'inspection_assignments',
  {
    inspectionId: text('inspection_id').notNull(),
    accountId: text('account_id').notNull(),
    /** Its capped bond at the draw. */
    weight: integer('weight').notNull(),
    commitment: text('commitment'),
    committedAt: integer('committed_at'),
    verdict: text('verdict', { mode: 'json' }).$type<Record<string, unknown>>(),
    salt: text('salt'),
    signature: text('signature'),
    /** The inspector key that signed, kept as it was: the account may change its key later. */
    publicKey: text('public_key'),
    revealedAt: integer('revealed_at'),
    result: text('result', { enum: ['paid', 'wrong', 'missed'] }),
    /** GRID micro-units paid (paid) or slashed (wrong, missed). */
    amount: integer('amount'),
    transactionId: text('transaction_id'),
    settledAt: integer('settled_at'),
  },
  (t) => [uniqueIndex('inspection_assignments_pk').on(t.inspectionId, t.accountId), index('inspection_assignments_account_idx').on(t.accountId, t.settledAt)],
);

// ── Supply rewards ───────────────────────────────────────────────────────────────────

/**
 * One supply-rewards epoch being closed or closed (docs/rewards.md, "Closing"). `status` moves
 * computing → paying → closed, each by a conditional UPDATE; `cursor` is the last node id whose
 * inputs were gathered (null before the first chunk). GRID amounts are micro-units.
 */
export const rewardEpochs = sqliteTable('reward_epochs', {
  epoch: integer('epoch').primaryKey(),
  status: text('status', { enum: ['computing', 'paying', 'closed'] }).notNull().default('computing'),
  emission: integer('emission'),
  inspectorPay: integer('inspector_pay'),
  taperPpm: integer('taper_ppm'),
  utilisationPpm: integer('utilisation_ppm'),
  providersEmission: integer('providers_emission'),
  paid: integer('paid'),
  returned: integer('returned'),
  lines: integer('lines'),
  /** SHA-256 (hex) of the canonical JSON of the lines' inputs, in node id order. */
  inputsHash: text('inputs_hash'),
  /** E(n) of the schedule, and the pool's balance at the split: the emission is the smaller. */
  scheduledEmission: integer('scheduled_emission'),
  poolBalance: integer('pool_balance'),
  /** The rules' parameters the split used (params.ts), as published with the epoch. */
  params: text('params', { mode: 'json' }).$type<Record<string, unknown>>(),
  cursor: text('cursor'),
  startedAt: integer('started_at').notNull(),
  closedAt: integer('closed_at'),
});

/** One node's inputs and reward in one epoch; `paid_at` and `transaction_id` set with its ledger payment. */
export const rewardLines = sqliteTable(
  'reward_lines',
  {
    epoch: integer('epoch').notNull(),
    nodeId: text('node_id').notNull(),
    ownerId: text('owner_id').notNull(),
    gpuModel: text('gpu_model'),
    gpusOffered: integer('gpus_offered').notNull(),
    confirmedS: integer('confirmed_s').notNull(),
    leasedGpuS: integer('leased_gpu_s').notNull(),
    verified: integer('verified', { mode: 'boolean' }).notNull(),
    /** GRID micro-units bonded for the node's GPUs (0 until provider stake exists). */
    stake: integer('stake').notNull().default(0),
    eligible: integer('eligible', { mode: 'boolean' }),
    weight: integer('weight'),
    amount: integer('amount'),
    immediate: integer('immediate'),
    vesting: integer('vesting'),
    /** Of `vesting`, how much has been released to available, and how much forfeited. */
    released: integer('released').notNull().default(0),
    forfeited: integer('forfeited').notNull().default(0),
    transactionId: text('transaction_id'),
    paidAt: integer('paid_at'),
    /** When vesting was last released (paid_at until the first release): the cron releases each line at most daily. */
    releasedAt: integer('released_at'),
  },
  (t) => [
    uniqueIndex('reward_lines_pk').on(t.epoch, t.nodeId),
    index('reward_lines_owner_idx').on(t.ownerId, t.epoch),
    // A node's lines, when its unvested rewards are forfeited.
    index('reward_lines_node_idx').on(t.nodeId, t.epoch),
    // The vesting step walks lines with something still to release, least recently released first.
    index('reward_lines_vesting_idx').on(t.releasedAt).where(sql`vesting > released + forfeited AND paid_at IS NOT NULL`),
  ],
);

/**
 * A provider's stake movements per node (docs/rewards.md, "Stake"). A `stake` row is written
 * with its ledger transaction (available → staked, status `staked`); an `unstake` row starts
 * `pending` with the money still staked (and slashable) and becomes `released` when the cron
 * posts staked → available after `release_at`. A slash (staked → rewards_pool) marks pending
 * unstakes it takes whole `slashed` (one it takes in part keeps `pending`, its amount reduced) and
 * records the rest as an `unstake` row of status `slashed` keyed `stake-slash:<inspection id>`.
 * So a node's active stake is Σ stake − Σ unstake, over every status (src/rewards/stakes.ts).
 * Unique per account × kind × Idempotency-Key, so each request moves money once.
 */
export const nodeStakes = sqliteTable(
  'node_stakes',
  {
    id: text('id').primaryKey(),
    nodeId: text('node_id').notNull(),
    accountId: text('account_id').notNull(),
    kind: text('kind', { enum: ['stake', 'unstake'] }).notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    requestHash: text('request_hash').notNull(),
    /** GRID micro-units. */
    amount: integer('amount').notNull(),
    status: text('status', { enum: ['staked', 'pending', 'released', 'slashed'] }).notNull(),
    releaseAt: integer('release_at'),
    releasedAt: integer('released_at'),
    /** The ledger transaction that moved the money: the stake, an unstake's release, or the slash. */
    transactionId: text('transaction_id'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('node_stakes_key_uq').on(t.accountId, t.kind, t.idempotencyKey),
    index('node_stakes_node_idx').on(t.nodeId, t.kind, t.createdAt),
    index('node_stakes_due_idx').on(t.status, t.releaseAt),
    check('node_stakes_amount_positive', sql`${t.amount} > 0`),
  ],
);
