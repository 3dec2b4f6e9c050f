/**
 * A free port for a server that a test stops and starts again on the same port (serverRestart's
 * Temporal, databaseOutage's PostgreSQL). `freePort()` asks the kernel for one, from its ephemeral
 * range, and from that range the kernel also gives out the local ports of outgoing connections and
 * other files' `freePort()` calls: while the server is down, its port can be handed to one of them,
 * and the restart then fails to bind. This picks a port just below the ephemeral range, which the
 * kernel never hands out by itself.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** How far below the ephemeral range to look (clear of the well-known ports under 10000 here). */
const SPAN = 12_000;

export async function freeRestartPort(): Promise<number> {
  const low = ephemeralRangeStart();
  const first = Math.max(1024, low - SPAN);
  const start = first + Math.floor(Math.random() * (low - first));
  for (let i = 0; i < low - first; i += 1) {
    const port = first + ((start - first + i) % (low - first));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${first}-${low - 1}, below the ephemeral range`);
}

function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && low > 1024) return low;
  } catch {
    // Not Linux: Linux's default range starts here.
  }
  return 32_768;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
