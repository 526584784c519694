import { createRoute, z } from '@hono/zod-openapi';
import { keyRing } from '../auth/tokens.ts';
import { jsonContent } from '../contracts/common.ts';
import { router } from '../http/router.ts';

const app = router();

app.openapi(
  createRoute({
    method: 'get',
    path: '/jwks.json',
    tags: ['auth'],
    summary: 'Public keys that verify Gridlease access tokens',
    responses: {
      200: jsonContent(z.object({ keys: z.array(z.record(z.string(), z.unknown())) }), 'JSON Web Key Set'),
    },
  }),
  async (c) => {
    const ring = await keyRing(c.env.JWT_PRIVATE_KEYS);
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(ring.jwks, 200);
  },
);

export default app;
