/** True when a libSQL error (possibly wrapped by drizzle) is a UNIQUE constraint violation. */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT') && typeof message === 'string' && message.includes('UNIQUE')) {
      return true;
    }
    if (typeof message === 'string' && message.includes('UNIQUE constraint failed')) return true;
  }
  return false;
}

/** Every message in an error's cause chain (drizzle and the client wrap libSQL's), joined. */
export function errorText(err: unknown): string {
  let text = '';
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    text += ` ${String((e as { message?: unknown }).message ?? '')}`;
  }
  return text;
}

/** Raised by the orders_account_active trigger (migrations/0005): the account is not active. */
export const ORDER_ACCOUNT_NOT_ACTIVE = 'order_account_not_active';

/** True when a statement failed with `RAISE(ABORT, message)` from one of our triggers. */
export function isRaised(err: unknown, message: string): boolean {
  return errorText(err).includes(message);
}
