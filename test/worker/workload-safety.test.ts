// A bid's workload ends up on a provider's machine: the API refuses anything that could reach
// `docker run` as an option or steer the GPU runtime, with a 400 naming the field.
import { describe, expect, it } from 'vitest';
import { balances, expectError, fund, signUp } from './support.ts';
import { buy, place, workload } from './trading.ts';

// Nothing here may reach a book: every order is refused before it rests.
const bid = (w: Record<string, unknown>) => buy('us-east', 'h100-80gb', { workload: { ...workload, ...w } });

describe('workload safety at the API', () => {
  it('refuses images that docker would read as options, or that only look like names, naming workload.image', async () => {
    const renter = await signUp();
    await fund(renter, 'USD', '1.00');
    const images = ['--privileged', '--volume=/:/host', '-v', ' alpine', 'alpine --privileged', '\u2010\u2010privileged', '\uff0d\uff0dprivileged', 'Alpine', 'ghcr.io//x', `alpine@sha256:${'0'.repeat(63)}`, 'localhost:5000/x', '169.254.169.254/latest'];
    for (const image of images) {
      const error = await expectError(await place(renter, bid({ image })), 400, 'validation_failed');
      expect([image, error.message]).toEqual([image, expect.stringContaining('workload.image:')]);
    }
    // The same body with a real image passes validation and is refused only for want of funds.
    await expectError(await place(renter, bid({ image: 'ghcr.io/acme/train:1.4' })), 402, 'insufficient_funds');
    expect(await balances(renter)).toMatchObject({ USD: { available: '1.00', held: '0.00' } });
  });

  it('refuses env that would override the pinned GPU and lease variables, control characters, NUL in argv and repeated ports', async () => {
    const renter = await signUp();
    const cases: [Record<string, unknown>, string][] = [
      [{ env: { NVIDIA_VISIBLE_DEVICES: 'all' } }, 'workload.env.NVIDIA_VISIBLE_DEVICES:'],
      [{ env: { NVIDIA_DRIVER_CAPABILITIES: 'all' } }, 'workload.env.NVIDIA_DRIVER_CAPABILITIES:'],
      [{ env: { GRIDLEASE_LEASE_ID: 'lse_other' } }, 'workload.env.GRIDLEASE_LEASE_ID:'],
      [{ env: { MODE: 'a\u0000b' } }, 'workload.env.MODE:'],
      [{ env: { MODE: '\u001b]0;owned\u0007' } }, 'workload.env.MODE:'],
      [{ command: ['python', 'a\u0000b'] }, 'workload.command.1:'],
      [{ ports: [8888, 8888] }, 'workload.ports:'],
    ];
    for (const [w, field] of cases) {
      const error = await expectError(await place(renter, bid(w)), 400, 'validation_failed');
      expect([w, error.message]).toEqual([w, expect.stringContaining(field)]);
    }
  });
});
