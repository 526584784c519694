import { Hono } from 'hono';
import type { AppEnv } from '../app-env.ts';

/** Where Stripe Checkout returns the renter when APP_URL is this API (local development). */
const app = new Hono<AppEnv>();

app.get('/deposits/:id', (c) => {
  const id = c.req.param('id').replace(/[^A-Za-z0-9_]/g, '');
  const cancelled = c.req.query('status') === 'cancelled';
  const text = cancelled
    ? 'The payment was cancelled; nothing was charged.'
    : 'Thank you. Your balance is credited as soon as the card processor confirms the payment.';
  return c.html(
    `<!doctype html><meta charset="utf-8"><title>Gridlease deposit</title>` +
      `<body style="font-family:system-ui;max-width:36rem;margin:4rem auto"><h1>Deposit ${id}</h1><p>${text}</p>` +
      `<p>Check it with <code>GET /v1/deposits/${id}</code> and <code>GET /v1/balances</code>.</p></body>`,
  );
});

export default app;
