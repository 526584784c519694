/** An error and its causes, outermost first (drizzle and the client wrap libSQL's errors). */
function* causes(err: unknown): Generator<{ code?: unknown; message?: unknown }> {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) yield e as { code?: unknown; message?: unknown };
}

/** Every message in an error's cause chain, joined. */
export function errorText(err: unknown): string {
  let text = '';
  for (const e of causes(err)) text += ` ${String(e.message ?? '')}`;
  return text;
}

/** True when a libSQL error (possibly wrapped by drizzle) is a UNIQUE constraint violation. */
export function isUniqueViolation(err: unknown): boolean {
  for (const { code, message } of causes(err)) {
    if (typeof message !== 'string') continue;
    if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT') && message.includes('UNIQUE')) return true;
    if (message.includes('UNIQUE constraint failed')) return true;
  }
  return false;
}

/** Raised by the orders_account_active trigger (migrations/0005): the account is not active. */
export const ORDER_ACCOUNT_NOT_ACTIVE = 'order_account_not_active';

/** True when a statement failed with `RAISE(ABORT, message)` from one of our triggers. */
export function isRaised(err: unknown, message: string): boolean {
  return errorText(err).includes(message);
}
