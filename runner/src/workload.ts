// The runner checks every workload again with the API's own schema before anything of it reaches
// docker or a child process: a bid that rested from before a rule existed, or an API that was
// wrong, must still not get an option into `docker run` or a pinned variable overridden.
import { WorkloadSchema } from '../../src/contracts/runner.ts';

/** The first rule the workload breaks, as the lease's failure reason; null when it is fine. */
export function workloadProblem(workload: unknown): string | null {
  const parsed = WorkloadSchema.safeParse(workload);
  if (parsed.success) return null;
  const issue = parsed.error.issues[0]!;
  return refusal(['workload', ...issue.path], issue.message);
}

export const refusal = (path: readonly PropertyKey[], message: string) => `the workload was refused: ${path.map(String).join('.')}: ${message}`;
