import { DockerExecutor, type DockerExecutorOptions } from './docker.ts';
import { ProcessExecutor, type ProcessExecutorOptions } from './process.ts';
import type { Executor } from './types.ts';

export const EXECUTORS = ['docker', 'process'] as const;
export type ExecutorName = (typeof EXECUTORS)[number];

export function createExecutor(name: ExecutorName, options: { docker?: DockerExecutorOptions; process?: ProcessExecutorOptions } = {}): Executor {
  return name === 'docker' ? new DockerExecutor(options.docker) : new ProcessExecutor(options.process);
}
