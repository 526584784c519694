// npm run dev:chain-deposit -- --memo <account id> --amount 25.00 [--asset USDC|GRID] [--confirmations 12]
// Plays the chain watcher against the local platform: sends a signed notification of a token
// transfer to the platform's deposit address, as the real watcher would after seeing it on chain.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { LOCAL_CHAIN, LOCAL_GRID_ADDRESS, LOCAL_USDC_ADDRESS, dataDir } from './dev-config.ts';
import { loadOrCreateSecrets } from './secrets.ts';
import { CHAIN_SIGNATURE_HEADER, signChainPayload } from '../src/payments/chain-signature.ts';


const { values } = parseArgs({
  options: {
    memo: { type: 'string' },
    amount: { type: 'string' },
    asset: { type: 'string', default: 'USDC' },
    confirmations: { type: 'string', default: '12' },
    tx: { type: 'string' },
    api: { type: 'string', default: process.env.GRIDLEASE_API ?? `http://127.0.0.1:${process.env.PORT ?? 8787}` },
  },
});

if (!values.memo || !values.amount || !['USDC', 'GRID'].includes(values.asset!)) {
  console.error('usage: npm run dev:chain-deposit -- --memo <account id> --amount 25.00 [--asset USDC|GRID] [--confirmations 12] [--tx 0x…]');
  process.exit(2);
}

const secrets = await loadOrCreateSecrets(dataDir());
const body = JSON.stringify({
  chain: LOCAL_CHAIN,
  tx_hash: values.tx ?? `0x${randomBytes(32).toString('hex')}`,
  log_index: 0,
  asset: values.asset,
  amount: values.amount,
  to_address: values.asset === 'GRID' ? LOCAL_GRID_ADDRESS : LOCAL_USDC_ADDRESS,
  memo: values.memo,
  confirmations: Number(values.confirmations),
});
const signature = await signChainPayload(secrets.CHAIN_WEBHOOK_SECRETS.split(',')[0]!, body, Math.floor(Date.now() / 1000));
try {
  const res = await fetch(`${values.api}/v1/webhooks/chain`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [CHAIN_SIGNATURE_HEADER]: signature },
    body,
  });
  console.log(`${res.status} ${await res.text()}`);
  console.log(`tx ${JSON.parse(body).tx_hash} (send again with --tx and more --confirmations to confirm it)`);
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`cannot reach ${values.api}: ${(err as Error).message} (is npm start running?)`);
  process.exit(1);
}
