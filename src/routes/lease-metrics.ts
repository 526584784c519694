// Mounted at /v1/leases (src/index.ts).
import { router } from '../http/router.ts';

const app = router();

export default app;
