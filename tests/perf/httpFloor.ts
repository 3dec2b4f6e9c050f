/**
 * The floor under the API's CPU-per-call figures: a bare `node:http` server in a process of its
 * own (no framework, no auth, no logging: it reads the request and answers a fixed 200 or 304),
 * driven by the same generator at the same rate, first with Poisson arrivals
 * (openLoopGenerator.cjs), then in autocannon's per-second bursts. What it costs per request is
 * what any Node API pays on this machine before doing any work of its own; a request that
 * arrives alone pays a whole wake-up (epoll, read, write, back to sleep), one in a burst shares it.
 *
 * `npx tsx tests/perf/httpFloor.ts [--rate N]`.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import { poissonArrivals, quantile } from './stats';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runOpenLoop } = require('./openLoopGenerator.cjs') as {
  runOpenLoop(options: {
    url: string;
    arrivals: Float64Array;
    connections: number;
    next(n: number): { method: string; path: string; headers: Record<string, string>; context?: unknown };
    check(status: number, headers: Record<string, string>, body: string, context: unknown): string | null;
  }): Promise<{ latencies: Float64Array; failures: number; firstFailures: string[] }>;
};

const BODY = Buffer.from(JSON.stringify({ agent_id: 'floor-agent', policy: 'x'.repeat(2000) }));
const ETAG = '"v1"';

export interface HttpFloor {
  rate: number;
  poisson: { cpuMsPerCall: number; p95Ms: number };
  bursts: { cpuMsPerCall: number; p95Ms: number };
}

/** The child: the bare server; answers `usage` (its CPU time) over IPC. */
function serveBare(): void {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      if (request.headers['if-none-match'] === ETAG) response.writeHead(304, { etag: ETAG }).end();
      else response.writeHead(200, { etag: ETAG, 'content-type': 'application/json', 'content-length': BODY.length }).end(BODY);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('message', () => {
    const usage = process.cpuUsage();
    process.send!({ cpuMs: (usage.user + usage.system) / 1000 });
  });
}

export async function measureHttpFloor(options: { rate: number; seconds: number; connections: number }): Promise<HttpFloor> {
  const child = fork(__filename, ['--serve-bare'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      child.once('message', resolve as never);
      child.once('exit', (code) => reject(new Error(`the bare server exited (${code})`)));
    });
    const url = `http://127.0.0.1:${port}`;
    const cpuMs = () =>
      new Promise<number>((resolve) => {
        child.once('message', (message: { cpuMs: number }) => resolve(message.cpuMs));
        child.send('usage');
      });
    const headersOf = (n: number): Record<string, string> => (n % 2 === 0 ? { 'if-none-match': ETAG } : {});

    let before = await cpuMs();
    const poisson = await runOpenLoop({
      url,
      arrivals: poissonArrivals(options.rate, options.seconds, 1),
      connections: options.connections,
      next: (n) => ({ method: 'GET', path: '/policy', headers: headersOf(n) }),
      check: (status) => (status === 200 || status === 304 ? null : `HTTP ${status}`),
    });
    const poissonCpu = (await cpuMs()) - before;
    if (poisson.failures > 0) throw new Error(`bare server: ${poisson.firstFailures[0]}`);

    before = await cpuMs();
    let sent = 0;
    const latencies: number[] = [];
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon(
        {
          url,
          connections: options.connections,
          overallRate: options.rate,
          duration: options.seconds,
          requests: [{ method: 'GET', path: '/policy', setupRequest: (request) => ({ ...request, headers: headersOf(sent++) }) }],
        },
        (error, done) => (error ? reject(error) : resolve(done)),
      );
      instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
    });
    const burstCpu = (await cpuMs()) - before;
    if (result.non2xx > 0 && result.non2xx !== result['3xx']) throw new Error(`bare server: ${result.non2xx} answers other than 200 and 304`);

    const sorted = (values: ArrayLike<number>) => Array.from(values).sort((a, b) => a - b);
    return {
      rate: options.rate,
      poisson: { cpuMsPerCall: poissonCpu / poisson.latencies.length, p95Ms: quantile(sorted(poisson.latencies), 0.95) },
      bursts: { cpuMsPerCall: burstCpu / latencies.length, p95Ms: quantile(sorted(latencies), 0.95) },
    };
  } finally {
    child.kill();
  }
}

if (require.main === module && process.argv.includes('--serve-bare')) {
  serveBare();
} else if (require.main === module) {
  const rateArg = process.argv.indexOf('--rate');
  const rate = rateArg > 0 ? Number(process.argv[rateArg + 1]) : 500;
  measureHttpFloor({ rate, seconds: 10, connections: 50 }).then(
    (floor) => {
      console.log(`bare node:http server at ${floor.rate} req/s: Poisson arrivals ${floor.poisson.cpuMsPerCall.toFixed(4)} ms CPU per call (p95 ${floor.poisson.p95Ms.toFixed(1)} ms); autocannon bursts ${floor.bursts.cpuMsPerCall.toFixed(4)} ms (p95 ${floor.bursts.p95Ms.toFixed(1)} ms)`);
      process.exit(0);
    },
    (error: Error) => {
      console.error(`http floor failed: ${error.stack ?? error.message}`);
      process.exit(1);
    },
  );
}
