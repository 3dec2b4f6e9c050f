/**
 * What the API answers a client whose request never becomes one: too slow to send it (a slowloris
 * holding connections open), headers too large, or bytes that are not HTTP. Node's HTTP server
 * finds these before fastify sees a request; fastify's own answer has another shape than every
 * other error here, so these answers carry the API's `{error: {code, message, data}}` too.
 */
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import { rpcErrorBody, type RpcErrorName } from './errors';

/** How long a client has to send a whole request, headers and body (FLOW_API_REQUEST_TIMEOUT_MS). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** How long it has for the headers alone: a slow sender of headers is refused sooner. */
const HEADERS_TIMEOUT_MS = 10_000;

/**
 * The node:http timeouts for a request timeout. Node checks them every `connectionsCheckingInterval`
 * (30 s by default, which would let a 30 s limit run to a minute): a tenth of the headers' limit here.
 * No request timeout (0, fastify's default) keeps Node's 60 s for the headers (Node would take 0 from it).
 */
export function httpTimeouts(requestTimeoutMs: number) {
  if (requestTimeoutMs <= 0) return { requestTimeout: 0, headersTimeout: 60_000 };
  const headersTimeout = Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs);
  return { requestTimeout: requestTimeoutMs, headersTimeout, connectionsCheckingInterval: Math.max(50, Math.floor(headersTimeout / 10)) };
}

const ANSWERS: Record<string, [number, RpcErrorName, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'REQUEST_TIMEOUT', 'the request was not received in time'],
  HPE_HEADER_OVERFLOW: [431, 'REQUEST_TOO_LARGE', 'the request headers exceed 16 KB'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'REQUEST_TOO_LARGE', 'the chunk extensions exceed 16 KB'],
};

/**
 * An answer written straight to a socket, for clients Node's HTTP server never hands to fastify:
 * the status, the API's error shape, `Connection: close`, and any `extraHeaders` lines.
 */
export function rawErrorAnswer(status: number, name: RpcErrorName, detail: string, extraHeaders = ''): string {
  const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: rpcErrorBody(name, detail) });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}Connection: close\r\n\r\n${body}`;
}

/** fastify's `clientErrorHandler`: the answer, then the connection closed (as Node and fastify do). */
export function answerClientError(error: Error & { code?: string }, socket: Socket & { _httpMessage?: { headersSent?: boolean } | null }): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, name, detail] = ANSWERS[error.code ?? ''] ?? [400, 'INVALID_REQUEST', 'the bytes received are not a valid HTTP/1.1 request'];
  // Not into the middle of an answer already being written (a pipelined request's error while
  // the one before it is answered). Node's own handler holds back once the header bytes are
  // written; this, once the header is composed: a little sooner, never later.
  if (socket.writable && !socket._httpMessage?.headersSent) socket.write(rawErrorAnswer(status, name, detail));
  socket.destroy(error);
}
