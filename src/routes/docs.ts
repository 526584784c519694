import { swaggerUI } from '@hono/swagger-ui';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.ts';

/** Serves the OpenAPI document generated from the route schemas, and a page to try it. */
export function mountDocs(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An access token from POST /v1/auth/token, or an API key (glk_…)',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'nodeToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'The node token gridlease-runner received at registration',
  });
  app.doc31('/openapi.json', (c) => ({
    openapi: '3.1.0',
    info: {
      title: 'Gridlease API',
      version: '1',
      description: 'An exchange for GPU time. Errors are always {"error": {"code", "message", "request_id"}}.',
    },
    servers: [{ url: new URL(c.req.url).origin }],
  }));
  app.get('/docs', swaggerUI({ url: '/openapi.json', title: 'Gridlease API' }));
}
