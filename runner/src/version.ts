/** Kept equal to runner/package.json "version" (a unit test checks). */
export const RUNNER_VERSION = '0.1.0';
export const USER_AGENT = `gridlease-runner/${RUNNER_VERSION}`;
