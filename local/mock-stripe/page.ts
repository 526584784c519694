// The mock's hosted Checkout page (GET /checkout/:id): amount, line items and two forms,
// "Pay" (POST /checkout/:id/pay) and "Cancel" (POST /checkout/:id/cancel). No card form:
// paying here only marks the session paid and sends the webhook event.
import type { CheckoutLineItem, CheckoutSession } from './sessions.ts';

export const PAGE_TITLE = 'Mock Stripe Checkout (local)';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

export function formatAmount(amount: number, currency: string): string {
  const format = new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount / 10 ** digits);
}

function layout(body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${PAGE_TITLE}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1a1f36}
.banner{background:#fff3cd;border:1px solid #e0c36c;padding:.5rem .75rem;border-radius:6px;font-size:.9rem}
table{width:100%;border-collapse:collapse;margin:1rem 0}td{padding:.35rem 0;border-bottom:1px solid #e3e8ee}
td.r{text-align:right}.total{font-size:1.6rem;font-weight:600}.actions{display:flex;gap:.75rem}
button{font-size:1rem;padding:.6rem 1.4rem;border-radius:6px;border:1px solid #635bff;cursor:pointer}
button.pay{background:#635bff;color:#fff}button.cancel{background:#fff;color:#635bff}</style>
</head><body>
<p class="banner">${PAGE_TITLE}: a local mock of Stripe. No card is charged and no money moves.</p>
${body}
</body></html>
`;
}

export function checkoutPage(session: CheckoutSession, lineItems: CheckoutLineItem[]): string {
  const id = encodeURIComponent(session.id);
  const rows = lineItems
    .map(
      (item) =>
        `<tr><td>${escapeHtml(item.name)}${item.quantity > 1 ? ` × ${item.quantity}` : ''}</td><td class="r">${escapeHtml(formatAmount(item.amount_total, session.currency))}</td></tr>`,
    )
    .join('\n');
  const total = escapeHtml(formatAmount(session.amount_total, session.currency));
  let actions: string;
  if (session.status === 'open') {
    actions = `<div class="actions">
<form method="post" action="/checkout/${id}/pay"><button class="pay" type="submit">Pay ${total}</button></form>
<form method="post" action="/checkout/${id}/cancel"><button class="cancel" type="submit">Cancel</button></form>
</div>`;
  } else if (session.status === 'complete') {
    actions = `<p>This Checkout Session is complete (paid). <a href="${escapeHtml(successRedirect(session))}">Return to the merchant</a></p>`;
  } else {
    actions = '<p>This Checkout Session has expired.</p>';
  }
  return layout(`<h1>Pay</h1>
<p class="total" data-amount="${session.amount_total}" data-currency="${escapeHtml(session.currency)}">${total}</p>
<table>${rows}</table>
<p><small>Session <code>${escapeHtml(session.id)}</code></small></p>
${actions}`);
}

export function messagePage(message: string): string {
  return layout(`<p>${escapeHtml(message)}</p>`);
}

/** Stripe substitutes the session id for the {CHECKOUT_SESSION_ID} template in success_url. */
export function successRedirect(session: CheckoutSession): string {
  return session.success_url.replaceAll('{CHECKOUT_SESSION_ID}', session.id);
}
