// Property tests in `npm test` are replayable: fast-check draws from one fixed seed unless a test
// names its own. FC_SEED=<n> replays another seed; FC_SEED=random explores (docs/testing.md).
import fc from 'fast-check';

const raw = process.env.FC_SEED;
if (raw !== 'random') {
  const seed = raw === undefined || raw === '' ? 20_261_207 : Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer or "random", not ${JSON.stringify(raw)}`);
  fc.configureGlobal({ seed });
}
