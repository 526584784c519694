// What `cloudflare:workers` gives a Durable Object class, for running the real RegionBook and
// Collector in Node under the fault simulators (vitest aliases the module here; run.ts maps it
// with a resolve hook). The simulators build each object with a SimObjectHost (do-host.ts) as
// its state, so nothing here does any work.
export class DurableObject<Env = unknown> {
  protected ctx: unknown;
  protected env: Env;
  constructor(ctx: unknown, env: Env) {
    this.ctx = ctx;
    this.env = env;
  }
}

// The RegionBook registers an automatic ping answer in its constructor.
const g = globalThis as { WebSocketRequestResponsePair?: unknown };
g.WebSocketRequestResponsePair ??= class WebSocketRequestResponsePair {
  readonly request: string;
  readonly response: string;
  constructor(request: string, response: string) {
    this.request = request;
    this.response = response;
  }
};
