/**
 * An open-loop load generator: requests arrive at Poisson times at `rate` a second (independent
 * callers), whatever the answers' latency, over a pool of keep-alive connections; a request that
 * finds every connection busy waits for one. Latency is from the request's arrival time to the
 * end of its response, so waiting for a connection or for the generator itself counts
 * (no coordinated omission).
 *
 * autocannon's `overallRate` is not this: each connection sends its share of a second's requests
 * back to back when the second starts and then idles, so 100 connections at 400 requests a second
 * are 100 bursts a second: a bare Node server answering in 0.1 ms showed p95 ~50 ms under it.
 *
 * Plain CommonJS: the perf benches run it in a worker thread, which loads it without tsx; the
 * arrival times come from poissonArrivals (tests/perf/stats.ts) in the caller.
 */
'use strict';
const http = require('node:http');
const { performance } = require('node:perf_hooks');

/**
 * options: { url, arrivals (ms from the start, ascending), connections, timeoutMs,
 *   next(n) -> { method, path, headers, body?, context }   (the n-th request, from 0)
 *   check(status, headers, body, context) -> null | string (why the answer is wrong) }
 * Resolves { seconds, sent, latencies (ms, one per answered request), failures, firstFailures,
 *   errors, timeouts }.
 */
function runOpenLoop(options) {
  const { url, arrivals, connections, timeoutMs = 10_000, next, check } = options;
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const latencies = [];
  const firstFailures = [];
  let failures = 0;
  let errors = 0;
  let timeouts = 0;
  let sent = 0;
  let outstanding = 0;
  const fail = (why) => {
    failures++;
    if (firstFailures.length < 5) firstFailures.push(String(why).slice(0, 300));
  };
  const start = performance.now();
  let index = 0;
  return new Promise((resolve) => {
    let scheduling = true;
    const finish = () => {
      if (scheduling || outstanding > 0) return;
      agent.destroy();
      resolve({ seconds: (performance.now() - start) / 1000, sent, latencies: Float64Array.from(latencies), failures, firstFailures, errors, timeouts });
    };
    const send = (arrival) => {
      const n = sent++;
      const { method, path, headers, body, context } = next(n);
      outstanding++;
      let settled = false;
      const settle = () => {
        if (settled) return false;
        settled = true;
        outstanding--;
        return true;
      };
      const request = http.request({ agent, host: target.hostname, port: target.port, method, path, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) } }, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => {
          if (!settle()) return;
          latencies.push(performance.now() - arrival);
          const why = check(response.statusCode, response.headers, Buffer.concat(chunks).toString('utf8'), context);
          if (why) fail(why);
          finish();
        });
      });
      request.setTimeout(timeoutMs, () => {
        timeouts++;
        request.destroy(new Error('timeout'));
      });
      request.on('error', (error) => {
        if (!settle()) return;
        errors++;
        fail(`request error: ${error.message}`);
        finish();
      });
      request.end(body);
    };
    const tick = () => {
      const now = performance.now();
      // Every request whose arrival time has come, late ones included (their wait counts).
      while (index < arrivals.length && start + arrivals[index] <= now) send(start + arrivals[index++]);
      if (index >= arrivals.length) {
        scheduling = false;
        finish();
        return;
      }
      setTimeout(tick, Math.max(0, start + arrivals[index] - performance.now()));
    };
    tick();
  });
}

module.exports = { runOpenLoop };
