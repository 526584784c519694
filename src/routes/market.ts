import { router } from '../http/router.ts';

const app = router();

export default app;
