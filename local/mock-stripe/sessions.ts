// Checkout Sessions for the mock Stripe API: validation of `POST /v1/checkout/sessions`
// parameters (names from the SDK's SessionCreateParams, messages and codes like Stripe's)
// and the `checkout.session` object returned. Only hosted, one-time `mode=payment`
// sessions with inline `price_data` are modelled; real parameters the mock does not model
// are accepted and ignored, parameters Stripe does not know are refused.
import { randomBytes } from 'node:crypto';
import { asList, invalid, rejectUnknown, StripeApiError, type FormObject, type FormValue } from './form.ts';

export interface CheckoutLineItem {
  name: string;
  description: string | null;
  unit_amount: number;
  quantity: number;
  amount_total: number;
}

/** The subset of Stripe's `checkout.session` object that the mock returns. */
export interface CheckoutSession {
  id: string;
  object: 'checkout.session';
  amount_subtotal: number;
  amount_total: number;
  cancel_url: string;
  client_reference_id: string | null;
  created: number;
  currency: string;
  customer: string | null;
  customer_details: { email: string | null; name: string | null } | null;
  customer_email: string | null;
  expires_at: number;
  livemode: false;
  locale: string | null;
  metadata: Record<string, string>;
  mode: 'payment';
  payment_intent: string | null;
  payment_method_types: string[];
  payment_status: 'unpaid' | 'paid';
  status: 'open' | 'complete' | 'expired';
  success_url: string;
  total_details: { amount_discount: number; amount_shipping: number; amount_tax: number };
  ui_mode: 'hosted_page';
  url: string | null;
}

/** Every top-level parameter of SessionCreateParams in stripe-node 23. */
const SESSION_PARAMS = new Set(
  ('adaptive_pricing after_expiration allow_promotion_codes allowed_payment_method_types automatic_tax ' +
    'billing_address_collection branding_settings cancel_url client_reference_id consent_collection currency ' +
    'custom_fields custom_text customer customer_account customer_creation customer_email customer_update discounts ' +
    'excluded_payment_method_types expand expires_at integration_identifier invoice_creation line_items locale ' +
    'managed_payments metadata mode name_collection optional_items origin_context payment_intent_data ' +
    'payment_method_collection payment_method_configuration payment_method_data payment_method_options permissions ' +
    'phone_number_collection redirect_on_completion return_url saved_payment_method_options setup_intent_data ' +
    'shipping_address_collection shipping_options submit_type subscription_data success_url tax_id_collection ' +
    'ui_mode wallet_options').split(' '),
);
const LINE_ITEM_PARAMS = new Set(['adjustable_quantity', 'metadata', 'price', 'price_data', 'quantity', 'tax_rates']);
const PRICE_DATA_PARAMS = new Set(['currency', 'product', 'product_data', 'recurring', 'tax_behavior', 'unit_amount', 'unit_amount_decimal']);
const PRODUCT_DATA_PARAMS = new Set(['description', 'images', 'metadata', 'name', 'tax_code', 'tax_details', 'unit_label']);
const CURRENCIES = new Set(Intl.supportedValuesOf('currency').map((c) => c.toLowerCase()));
const MAX_AMOUNT = 99_999_999; // $999,999.99, Stripe's ceiling for a USD charge

export const randomId = (prefix: string, bytes = 24) => prefix + randomBytes(bytes).toString('base64url').replace(/[-_]/g, '0');

function object(value: FormValue | undefined, param: string): FormObject | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string') throw invalid('Invalid object', param, 'parameter_invalid_object');
  return value;
}

function string(value: FormValue | undefined, param: string, required: boolean, maxLength = 5000): string | undefined {
  if (value === undefined || (value === '' && !required)) {
    if (required) throw invalid(`Missing required param: ${param}.`, param, 'parameter_missing');
    return undefined;
  }
  if (typeof value !== 'string') throw invalid(`Invalid string: ${param} must be a string, not an object`, param);
  if (value === '') {
    throw invalid(
      `You passed an empty string for '${param}'. We assume empty values are an attempt to unset a parameter; however '${param}' cannot be unset. You should remove '${param}' from your request or supply a non-empty value.`,
      param,
      'parameter_invalid_empty',
    );
  }
  if (value.length > maxLength) throw invalid(`Invalid ${param}: must be at most ${maxLength} characters`, param, 'parameter_invalid_string_too_long');
  return value;
}

function integer(value: FormValue | undefined, param: string, min: number): number {
  const text = string(value, param, true) as string;
  if (!/^-?\d+$/.test(text)) throw invalid(`Invalid integer: ${text}`, param, 'parameter_invalid_integer');
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw invalid(`Invalid ${param}: must be an integer greater than or equal to ${min}`, param, 'parameter_invalid_integer');
  return n;
}

function url(value: FormValue | undefined, param: string): string {
  const text = string(value, param, true, 5000) as string;
  let parsed: URL | undefined;
  try {
    parsed = new URL(text.replaceAll('{CHECKOUT_SESSION_ID}', 'x'));
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw invalid('Not a valid URL', param, 'url_invalid');
  return text;
}

function metadata(value: FormValue | undefined, param: string): Record<string, string> {
  const obj = object(value, param);
  const out: Record<string, string> = {};
  if (obj === undefined) return out;
  for (const [key, v] of Object.entries(obj)) {
    if (typeof v !== 'string') throw invalid(`Invalid value for ${param}[${key}]: metadata values must be strings`, `${param}[${key}]`);
    if (key.length > 40) throw invalid(`Metadata keys can have up to 40 characters; '${key}' is too long`, `${param}[${key}]`);
    if (v.length > 500) throw invalid(`Metadata values can have up to 500 characters, but you passed in a value that is ${v.length} characters`, `${param}[${key}]`);
    if (v !== '') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  if (Object.keys(out).length > 50) throw invalid('You can have up to 50 metadata keys', param);
  return out;
}

function lineItem(value: FormValue, i: number): CheckoutLineItem & { currency: string } {
  const p = `line_items[${i}]`;
  const item = object(value, p);
  if (item === undefined) throw invalid(`Missing required param: ${p}.`, p, 'parameter_missing');
  rejectUnknown(item, LINE_ITEM_PARAMS, p);
  if (item.price !== undefined) throw new StripeApiError(400, 'invalid_request_error', `No such price: '${String(item.price)}' (the mock knows no Price objects; use price_data)`, { param: `${p}[price]`, code: 'resource_missing' });
  const priceData = object(item.price_data, `${p}[price_data]`);
  if (priceData === undefined) throw invalid(`Missing required param: ${p}[price_data].`, `${p}[price_data]`, 'parameter_missing');
  const pp = `${p}[price_data]`;
  rejectUnknown(priceData, PRICE_DATA_PARAMS, pp);
  const currency = (string(priceData.currency, `${pp}[currency]`, true) as string).toLowerCase();
  if (!CURRENCIES.has(currency)) throw invalid(`Invalid currency: ${currency}.`, `${pp}[currency]`);
  if (priceData.recurring !== undefined) {
    throw invalid('You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.', `${pp}[recurring]`);
  }
  if (priceData.unit_amount === undefined && priceData.unit_amount_decimal !== undefined) {
    throw invalid('The mock Stripe supports only price_data[unit_amount], not unit_amount_decimal', `${pp}[unit_amount_decimal]`);
  }
  const unitAmount = integer(priceData.unit_amount, `${pp}[unit_amount]`, 1);
  if (priceData.product !== undefined) throw new StripeApiError(400, 'invalid_request_error', `No such product: '${String(priceData.product)}'`, { param: `${pp}[product]`, code: 'resource_missing' });
  const productData = object(priceData.product_data, `${pp}[product_data]`);
  if (productData === undefined) throw invalid(`Missing required param: ${pp}[product_data].`, `${pp}[product_data]`, 'parameter_missing');
  rejectUnknown(productData, PRODUCT_DATA_PARAMS, `${pp}[product_data]`);
  const name = string(productData.name, `${pp}[product_data][name]`, true) as string;
  const description = string(productData.description, `${pp}[product_data][description]`, false) ?? null;
  const quantity = integer(item.quantity, `${p}[quantity]`, 1);
  return { name, description, unit_amount: unitAmount, quantity, amount_total: unitAmount * quantity, currency };
}

/** Validates create parameters and builds the open session (its `url` is set by the caller). */
export function buildSession(params: FormObject, now: number): { session: CheckoutSession; lineItems: CheckoutLineItem[] } {
  rejectUnknown(params, SESSION_PARAMS, '');
  const mode = string(params.mode, 'mode', true);
  if (mode !== 'payment') throw invalid(`Invalid mode: the mock Stripe supports only mode=payment, got '${mode}'`, 'mode');
  const uiMode = string(params.ui_mode, 'ui_mode', false);
  if (uiMode !== undefined && uiMode !== 'hosted' && uiMode !== 'hosted_page') throw invalid(`The mock Stripe supports only hosted Checkout, got ui_mode '${uiMode}'`, 'ui_mode');
  const items = asList(params.line_items, 'line_items');
  if (items.length === 0) throw invalid('Missing required param: line_items.', 'line_items', 'parameter_missing');
  if (items.length > 100) throw invalid('You can have up to 100 line items', 'line_items');
  const lineItems = items.map(lineItem);
  const currency = (lineItems[0] as { currency: string }).currency;
  lineItems.forEach((item, i) => {
    if (item.currency !== currency) throw invalid('All line items must have the same currency', `line_items[${i}][price_data][currency]`);
  });
  const amount = lineItems.reduce((sum, item) => sum + item.amount_total, 0);
  if (amount > MAX_AMOUNT) throw invalid(`The Checkout Session's total amount due must be no more than ${MAX_AMOUNT} (in the smallest currency unit)`, 'line_items', 'amount_too_large');
  if (currency === 'usd' && amount < 50) throw invalid("The Checkout Session's total amount due must add up to at least $0.50 usd", 'line_items', 'amount_too_small');
  const successUrl = url(params.success_url, 'success_url');
  const cancelUrl = url(params.cancel_url, 'cancel_url');
  let expiresAt = now + 24 * 3600;
  if (params.expires_at !== undefined) {
    expiresAt = integer(params.expires_at, 'expires_at', 0);
    if (expiresAt < now + 30 * 60 || expiresAt > now + 24 * 3600) {
      throw invalid('The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.', 'expires_at');
    }
  }
  const email = string(params.customer_email, 'customer_email', false, 800) ?? null;
  if (email !== null && !/^[^\s@]+@[^\s@]+$/.test(email)) throw invalid(`Invalid email address: ${email}`, 'customer_email', 'email_invalid');
  const session: CheckoutSession = {
    id: randomId('cs_test_', 42),
    object: 'checkout.session',
    amount_subtotal: amount,
    amount_total: amount,
    cancel_url: cancelUrl,
    client_reference_id: string(params.client_reference_id, 'client_reference_id', false, 200) ?? null,
    created: now,
    currency,
    customer: null,
    customer_details: null,
    customer_email: email,
    expires_at: expiresAt,
    livemode: false,
    locale: string(params.locale, 'locale', false) ?? null,
    metadata: metadata(params.metadata, 'metadata'),
    mode: 'payment',
    payment_intent: null,
    payment_method_types: ['card'],
    payment_status: 'unpaid',
    status: 'open',
    success_url: successUrl,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted_page',
    url: null,
  };
  return { session, lineItems: lineItems.map(({ currency: _c, ...item }) => item) };
}

/** Marks an open session paid, as a successful card payment would. */
export function markPaid(session: CheckoutSession): void {
  session.status = 'complete';
  session.payment_status = 'paid';
  session.payment_intent = randomId('pi_', 18);
  session.customer_details = { email: session.customer_email ?? 'renter@example.test', name: 'Mock Renter' };
  session.url = null;
}
