import { describe, expect, it } from 'vitest';
import { hashPassword, passwordProblem, verifyPassword } from '../../src/auth/password.ts';

describe('password hashing', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const stored = await hashPassword('Nebula-Forge-7731', 1000);
    expect(stored).toMatch(/^pbkdf2-sha256\$1000\$[\w-]{22}\$[\w-]{43}$/);
    expect(await verifyPassword('Nebula-Forge-7731', stored)).toBe(true);
    expect(await verifyPassword('Nebula-Forge-7732', stored)).toBe(false);
  });

  it('salts every hash', async () => {
    expect(await hashPassword('Nebula-Forge-7731', 1000)).not.toBe(await hashPassword('Nebula-Forge-7731', 1000));
  });

  it('uses the iteration count stored with the hash', async () => {
    const old = await hashPassword('Nebula-Forge-7731', 2000);
    expect(await verifyPassword('Nebula-Forge-7731', old)).toBe(true);
    expect(await verifyPassword('Nebula-Forge-7731', old.replace('$2000$', '$2001$'))).toBe(false);
  });

  it('refuses malformed stored hashes instead of throwing', async () => {
    for (const stored of ['', 'plain', 'md5$1$a$b', 'pbkdf2-sha256$x$a$b']) {
      expect(await verifyPassword('anything', stored)).toBe(false);
    }
  });

  it('defaults to the strongest PBKDF2 cost Workers accept', async () => {
    expect(await hashPassword('Nebula-Forge-7731')).toMatch(/^pbkdf2-sha256\$100000\$/);
  });
});

describe('password policy', () => {
  it.each([
    ['short1!', 'at least 12'],
    ['a'.repeat(257), 'at most 256'],
    ['abababababab', '5 different'],
    ['Password1234', 'too common'],
    ['ada.lovelace-rocks', 'email'],
  ])('refuses %s', (password, reason) => {
    expect(passwordProblem(password, 'ada.lovelace@example.com')).toContain(reason);
  });

  it('accepts a long passphrase, counting characters rather than bytes', () => {
    expect(passwordProblem('correct horse battery staple', 'ada@example.com')).toBeNull();
    expect(passwordProblem('ключ-от-сейфа', 'ada@example.com')).toBeNull();
    expect(passwordProblem('🔑🔒🗝️🚪🏠🌙', 'ada@example.com')).not.toBeNull();
  });
});
