import { createRoute, z } from '@hono/zod-openapi';
import { GPU_MODELS } from '../catalog/gpus.ts';
import { REGIONS } from '../catalog/regions.ts';
import { jsonContent } from '../contracts/common.ts';
import { router } from '../http/router.ts';

const app = router();
const CACHE = 'public, max-age=300, s-maxage=3600';

const GpuSchema = z
  .object({
    id: z.string().openapi({ example: 'h100-80gb' }),
    vendor: z.string(),
    names: z.array(z.string()).openapi({ description: 'Names nvidia-smi reports for this model' }),
    vram_gb: z.number(),
    fp16_tflops: z.number(),
    fp32_tflops: z.number(),
  })
  .openapi('GpuModel');

app.openapi(
  createRoute({
    method: 'get',
    path: '/gpus',
    tags: ['catalog'],
    summary: 'GPU models offers are listed under, and the names they map from',
    responses: { 200: jsonContent(z.object({ data: z.array(GpuSchema) }), 'Catalog') },
  }),
  (c) => {
    c.header('Cache-Control', CACHE);
    return c.json(
      {
        data: GPU_MODELS.map((m) => ({ id: m.id, vendor: m.vendor, names: [...m.names], vram_gb: m.vramGb, fp16_tflops: m.fp16Tflops, fp32_tflops: m.fp32Tflops })),
      },
      200,
    );
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/regions',
    tags: ['catalog'],
    summary: 'Regions with an order book',
    responses: { 200: jsonContent(z.object({ data: z.array(z.object({ id: z.string(), name: z.string() }).openapi('Region')) }), 'Regions') },
  }),
  (c) => {
    c.header('Cache-Control', CACHE);
    return c.json({ data: REGIONS.map((r) => ({ ...r })) }, 200);
  },
);

export default app;
