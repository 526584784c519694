import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses, jsonContent } from '../contracts/common.ts';
import { AssetSchema, MoneyString, amountSchema, money } from '../contracts/money.ts';
import { router } from '../http/router.ts';
import { pricingConfig } from '../money/config.ts';
import { quote } from '../money/quote.ts';

const app = router();

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    tags: ['money'],
    summary: 'What a USD price costs in an asset (GRID at the configured rate, with its discount)',
    request: { query: z.object({ asset: AssetSchema, usd: amountSchema({ allowZero: true }) }).strict() },
    responses: {
      200: jsonContent(
        z
          .object({
            usd: MoneyString,
            asset: AssetSchema,
            amount: MoneyString,
            grid_usd_rate: MoneyString,
            grid_discount_bps: z.number().int(),
          })
          .openapi('Quote'),
        'Quote',
      ),
      ...errorResponses(400),
    },
  }),
  (c) => {
    const { asset, usd } = c.req.valid('query');
    const config = pricingConfig(c.env);
    c.header('Cache-Control', 'public, max-age=30');
    return c.json(
      {
        usd: money(usd),
        asset,
        amount: money(quote(usd, asset, config)),
        grid_usd_rate: money(config.gridUsdRate),
        grid_discount_bps: Number(config.gridDiscountBps),
      },
      200,
    );
  },
);

export default app;
