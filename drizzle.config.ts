import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes SQL migrations from src/db/schema.ts into migrations/.
// They are applied from Node (`npm run db:migrate`, `npm start`, the test setup), never inside the Worker.
export default defineConfig({
  dialect: 'turso',
  schema: './src/db/schema.ts',
  out: './migrations',
});
