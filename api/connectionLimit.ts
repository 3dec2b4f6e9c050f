/**
 * A cap on the API's open connections. Idle keep-alive connections are held for fastify's 72 s
 * (longer than a load balancer's 60 s, so the balancer closes first), and a client could open them
 * without limit until the process ran out of file descriptors, and PostgreSQL's and Temporal's
 * connections with it. At the cap, a new connection takes the place of the keep-alive connection
 * idle the longest (as nginx reuses its idle keep-alive connections); when none is idle it is
 * answered 503 and closed. A connection that has not finished its first request is never closed
 * to make room: the request timeouts (api/clientErrors.ts) bound how long it can stay.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { rawErrorAnswer } from './clientErrors';

/** How many connections the API holds open at once (FLOW_API_MAX_CONNECTIONS). */
export const DEFAULT_MAX_CONNECTIONS = 4096;

/** How long a refused connection may stay to read its answer before it is closed. */
const REFUSED_LINGER_MS = 2_000;

/**
 * Caps `server` at `maxConnections`; what it returns says whether a request's connection was
 * admitted (a refused one is still read until it closes, and its requests must not be served).
 */
export function limitConnections(server: Server, maxConnections: number): (socket: Socket) => boolean {
  const refused = new WeakSet<Socket>();
  // Keep-alive connections whose last response is done, the one idle the longest first (a Map
  // keeps insertion order: a connection that becomes idle again moves to the end).
  const idle = new Map<Socket, true>();
  const inProgress = new Map<Socket, number>();
  let open = 0;

  server.on('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => {
      if (!refused.has(socket)) open--;
      idle.delete(socket);
      inProgress.delete(socket);
    });
    if (open <= maxConnections) return;
    const longestIdle = longestIdleOf(server, idle);
    if (longestIdle) {
      idle.delete(longestIdle);
      longestIdle.destroy();
      return;
    }
    // Not counted from here: it holds no request, and goes within REFUSED_LINGER_MS.
    open--;
    refused.add(socket);
    refuse(socket, maxConnections);
  });

  server.on('request', (request, response) => {
    const socket = request.socket;
    if (refused.has(socket)) return;
    idle.delete(socket);
    inProgress.set(socket, (inProgress.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (inProgress.get(socket) ?? 1) - 1;
      if (left > 0) return void inProgress.set(socket, left);
      inProgress.delete(socket);
      if (!socket.destroyed) idle.set(socket, true);
    });
  });
  return (socket) => !refused.has(socket);
}

/**
 * The connection idle the longest, if one is. Node's own list of idle connections (the one
 * `server.closeIdleConnections()` reads) also knows a connection whose next request has begun to
 * arrive but is not yet whole: that one is left alone. Without that list, the responses seen decide.
 */
function longestIdleOf(server: Server, idle: Map<Socket, true>): Socket | undefined {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections');
  const connections = key ? (server as unknown as Record<symbol, { idle?: () => { socket: Socket }[] }>)[key] : undefined;
  const reallyIdle = typeof connections?.idle === 'function' ? new Set(connections.idle().map((parser) => parser.socket)) : undefined;
  for (const socket of idle.keys()) if (!reallyIdle || reallyIdle.has(socket)) return socket;
  return undefined;
}

function refuse(socket: Socket, maxConnections: number): void {
  socket.end(rawErrorAnswer(503, 'TOO_MANY_CONNECTIONS', `all ${maxConnections} connections have a request in progress; retry later`, 'Retry-After: 1\r\n'));
  // Not destroyed at once: closing with the client's request unread would reset the connection,
  // and the client could lose the answer with it.
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}
