// Inspections end to end on the local platform (`npm start`'s launcher), with the bundled
// gridlease-runner on both sides: a machine with one (fake) H100 joins, answers its challenges and
// becomes verified; three bonded inspectors are drawn for each inspection, two of them running
// `gridlease-runner inspect` and re-checking every transcript, the third never answering; the two
// are paid from the rewards pool and the third is slashed. Then the machine's nvidia-smi is
// replaced by one listing sixteen H100s: joined again, it cannot compute sixteen products before the
// deadline, fails its capacity challenge and loses `verified`, and the inspectors fail it too. The
// inspection's public report verifies with `gridlease-runner verify-report`, and fails to after
// one byte of it is changed.
//
// The capacity challenge is capped at n = 1,024 here (the runner's CPU solver: 2–3 s a GPU), with
// a deadline of about 12 s (CHALLENGE_ALLOWANCE_S 10): one GPU's product fits, sixteen do not.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiClient, FAKE_SMI, makeOperator, runnerProcesses, runRunner as runner, signUp, smiFixture } from '../support/e2e.ts';
import { freePort, launch, type Platform } from '../support/platform.ts';

const H100 = smiFixture('h100.csv');
const H100_METRICS = smiFixture('metrics-h100.csv');
const MISS_SLASH = 5;
const REWARD = 1;

const work = mkdtempSync(join(tmpdir(), 'gridlease-inspections-e2e-'));
const runners = runnerProcesses();
let platform: Platform | undefined;
afterAll(async () => {
  runners.killAll();
  await platform?.stop();
  rmSync(work, { recursive: true, force: true });
});

const api = apiClient(() => platform!.url);
const account = (label: string) => signUp(api, label);
const background = (args: string[], env: NodeJS.ProcessEnv) => runners.start(args, env);

const nodeOf = async (nodeId: string, key: string) => (await api(`/v1/nodes/${nodeId}`, { auth: key })).body.node;

/** The node's decided inspections of one kind, newest first. */
async function inspectionsOf(nodeId: string, kind: 'identity' | 'capacity') {
  const list = await api(`/v1/nodes/${nodeId}/inspections`);
  expect(list.status).toBe(200);
  return (list.body.data as Array<{ id: string; kind: string; outcome: string }>).filter((i) => i.kind === kind);
}

async function report(id: string) {
  const res = await api(`/v1/inspections/${id}`);
  expect(res.status).toBe(200);
  return res.body as { report: any; jws: string };
}

/** Polls until every inspector's result is settled (the missing one is slashed by the cron). */
async function settledReport(id: string) {
  await expect
    .poll(async () => (await report(id)).report.verdicts.every((v: { result: string | null }) => v.result !== null), { timeout: 90_000, interval: 1_000 })
    .toBe(true);
  return report(id);
}

describe('inspections on the local platform', () => {
  it('verifies an honest node, fails one whose nvidia-smi claims more GPUs, pays and slashes the inspectors, and publishes reports that verify offline', async () => {
    const libsqlPort = await freePort();
    platform = await launch({
      dataDir: join(work, 'data'),
      port: await freePort(),
      libsqlPort,
      env: {
        HEARTBEAT_INTERVAL_S: '1',
        HEARTBEAT_MIN_INTERVAL_S: '0.5',
        HEARTBEAT_FLUSH_S: '1',
        NODE_GRACE_S: '60',
        CAPACITY_MAX_N: '1024',
        CHALLENGE_ALLOWANCE_S: '10',
        INSPECTION_COMMIT_S: '10',
        INSPECTION_REVEAL_S: '8',
        INSPECTION_DECOY_PPM: '0',
        GRIDLEASE_CRON_S: '2',
      },
    });
    const url = platform.url;

    // An operator (the role set in libSQL, as only a local platform allows) funds the rewards pool.
    const operator = await account('operator');
    await makeOperator(libsqlPort, operator.id);
    expect((await api('/v1/admin/rewards-pool/mint', { auth: operator.key, key: true, body: { amount: '100', reason: 'inspections e2e' } })).status).toBe(201);

    // Three inspectors bond the minimum and log in with keys of their own; two run the agent.
    const inspectors = [];
    // The absent one bonds more than the minimum: each missed verdict costs 5 GRID of it, and
    // below the minimum it would lose the role and stop being drawn.
    for (const [label, bond] of [['careful', 1000], ['thorough', 1000], ['absent', 1100]] as const) {
      const who = await account(`inspector.${label}`);
      expect((await api('/v1/dev/faucet', { auth: who.key, key: true, body: { asset: 'GRID', amount: String(bond + 100) } })).status).toBe(201);
      expect((await api('/v1/inspectors/bond', { auth: who.key, key: true, body: { amount: String(bond) } })).status).toBe(201);
      const env = { ...process.env, GRIDLEASE_INSPECTOR_CONFIG: join(work, label, 'inspector.json') };
      const login = runner(['inspect', 'login', '--api', url, '--token', who.key], env);
      expect(login.status, login.stderr).toBe(0);
      inspectors.push({ ...who, label, env });
    }
    const [careful, thorough, absent] = inspectors as [(typeof inspectors)[0], (typeof inspectors)[0], (typeof inspectors)[0]];
    const agents = [careful, thorough].map((who) => background(['inspect', 'run', '--interval', '1'], who.env));
    const standing = async (who: { key: string }) => (await api('/v1/inspectors/me', { auth: who.key })).body as { bonded: string };
    const available = async (who: { key: string }) => Number((await api('/v1/balances', { auth: who.key })).body.data.find((b: { asset: string }) => b.asset === 'GRID').available);

    // A machine with one H100 joins and starts.
    const provider = await account('provider');
    const smi = join(work, 'smi.csv');
    writeFileSync(smi, readFileSync(H100));
    const nodeEnv = { ...process.env, GRIDLEASE_CONFIG: join(work, 'node', 'runner.json'), GRIDLEASE_NVIDIA_SMI: FAKE_SMI, FAKE_SMI_GPUS: smi, FAKE_SMI_METRICS: H100_METRICS };
    const joinNode = () => {
      return api('/v1/nodes/join-tokens', { method: 'POST', auth: provider.key }).then(({ body }) => {
        const joined = runner(['join', '--api', url, '--token', body.join_token, '--region', 'us-east'], nodeEnv);
        expect(joined.status, joined.stderr).toBe(0);
        return JSON.parse(readFileSync(nodeEnv.GRIDLEASE_CONFIG, 'utf8')).node_id as string;
      });
    };
    const nodeId = await joinNode();
    let node = background(['start', '--executor', 'process'], nodeEnv);
    await expect.poll(async () => (await nodeOf(nodeId, provider.key)).verified, { timeout: 60_000, interval: 500 }).toBe(true);

    // Both challenges are inspected: all three inspectors drawn, the two running agents pass it.
    await expect.poll(async () => (await inspectionsOf(nodeId, 'capacity')).length, { timeout: 60_000, interval: 1_000 }).toBe(1);
    const [passed] = await inspectionsOf(nodeId, 'capacity');
    expect(passed!.outcome).toBe('pass');
    const honest = (await settledReport(passed!.id)).report;
    expect(honest.draw.panel.sort()).toEqual([careful.id, thorough.id, absent.id].sort());
    const results = Object.fromEntries(honest.verdicts.map((v: { inspector_id: string; result: string; verdict: { verdict: string } | null }) => [v.inspector_id, [v.result, v.verdict?.verdict ?? null]]));
    expect(results).toEqual({ [careful.id]: ['paid', 'pass'], [thorough.id]: ['paid', 'pass'], [absent.id]: ['missed', null] });
    expect(honest.transcript.challenge.n).toBe(1024);

    // The machine's nvidia-smi now lists sixteen H100s (its own card and fifteen it does not have).
    node.child.kill('SIGTERM');
    await new Promise((resolve) => node.child.once('exit', resolve));
    const own = readFileSync(H100, 'utf8').trim();
    const sixteen = [own, ...Array.from({ length: 15 }, (_, i) => own.replace(/^0,/, `${i + 1},`).replace(/GPU-[0-9a-f-]+/, `GPU-${crypto.randomUUID()}`))];
    writeFileSync(smi, `${sixteen.join('\n')}\n`);
    writeFileSync(join(work, 'metrics16.csv'), `${sixteen.map((_, i) => `${i}, 0, 0, 40, 60.5`).join('\n')}\n`);
    const sameNode = await joinNode();
    expect(sameNode).toBe(nodeId);
    node = background(['start', '--executor', 'process'], { ...nodeEnv, FAKE_SMI_METRICS: join(work, 'metrics16.csv') });
    expect((await nodeOf(nodeId, provider.key)).gpus).toHaveLength(16);

    // Sixteen products do not fit the deadline: the capacity challenge fails and `verified` is gone.
    await expect
      .poll(async () => (await inspectionsOf(nodeId, 'capacity')).map((i) => i.outcome), { timeout: 120_000, interval: 1_000 })
      .toEqual(['fail', 'pass']);
    expect((await nodeOf(nodeId, provider.key)).verified).toBe(false);
    const [failed] = await inspectionsOf(nodeId, 'capacity');
    const cheat = (await settledReport(failed!.id)).report;
    expect(cheat.challenge.status).toBe('expired');
    expect(cheat.transcript.challenge.gpu_count).toBe(16);
    const cheatResults = Object.fromEntries(cheat.verdicts.map((v: { inspector_id: string; result: string; verdict: { verdict: string } | null }) => [v.inspector_id, [v.result, v.verdict?.verdict ?? null]]));
    expect(cheatResults).toEqual({ [careful.id]: ['paid', 'fail'], [thorough.id]: ['paid', 'fail'], [absent.id]: ['missed', null] });
    node.child.kill('SIGTERM');
    for (const agent of agents) expect(agent.out.log).toMatch(new RegExp(`inspection ${failed!.id} \\(capacity, node ${nodeId}\\): fail`));

    // Money: every settled inspection paid the two and slashed the absent one, through the ledger.
    const settled = [];
    for (const kind of ['identity', 'capacity'] as const) for (const i of await inspectionsOf(nodeId, kind)) settled.push((await settledReport(i.id)).report);
    const paidEach = settled.length * REWARD;
    expect(await available(careful)).toBe(100 + paidEach);
    expect(await available(thorough)).toBe(100 + paidEach);
    expect(await available(absent)).toBe(100);
    expect(Number((await standing(absent)).bonded)).toBe(1100 - settled.length * MISS_SLASH);
    expect(Number((await standing(careful)).bonded)).toBe(1000);

    // The failed inspection's public report verifies offline, and not after one changed byte.
    const file = join(work, 'report.json');
    writeFileSync(file, JSON.stringify(await report(failed!.id)));
    const ok = runner(['verify-report', file, '--api', url], process.env);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const text = readFileSync(file, 'utf8');
    const root = (cheat.transcript.capacity.commitment?.roots?.[0] as string | undefined) ?? cheat.transcript.challenge.seed;
    const at = text.indexOf(root) + 5;
    writeFileSync(file, text.slice(0, at) + (text[at] === '0' ? '1' : '0') + text.slice(at + 1));
    const tampered = runner(['verify-report', file, '--api', url], process.env);
    expect(tampered.status, tampered.stdout).toBe(1);
  }, 300_000);
});
