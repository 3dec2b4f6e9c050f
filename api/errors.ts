/**
 * Every error the JSON-RPC facade can answer with, in one place: the JSON-RPC 2.0 standard codes
 * and Flow's application codes (the -32000..-32099 "server error" range the specification
 * reserves for implementations). docs and `rpc.discover` list these; clients switch on `code`.
 */
import { JSONRPCErrorException } from 'json-rpc-2.0';

export const RPC_ERRORS = {
  PARSE_ERROR: { code: -32700, message: 'Parse error', description: 'The body is not valid JSON.' },
  INVALID_REQUEST: { code: -32600, message: 'Invalid Request', description: 'Not a JSON-RPC 2.0 request object (or an empty batch).' },
  METHOD_NOT_FOUND: { code: -32601, message: 'Method not found', description: 'No method of that name.' },
  INVALID_PARAMS: { code: -32602, message: 'Invalid params', description: 'The params do not match the method schema; the message names the field.' },
  INTERNAL_ERROR: { code: -32603, message: 'Internal error', description: 'An unexpected failure; the response carries the request id to find it in the logs.' },

  TOKEN_MISSING: { code: -32001, message: 'Missing bearer token', description: 'No `Authorization: Bearer <jwt>` header.' },
  TOKEN_MALFORMED: { code: -32002, message: 'Malformed token', description: 'The bearer token is not a compact JWS/JWT.' },
  TOKEN_EXPIRED: { code: -32003, message: 'Token expired', description: 'The token `exp` is in the past.' },
  TOKEN_BAD_SIGNATURE: { code: -32004, message: 'Token signature invalid', description: 'The token was not signed by a key this server trusts.' },
  TOKEN_ALGORITHM_REJECTED: { code: -32005, message: 'Token algorithm not accepted', description: '`alg: none` or an algorithm not pinned for the key.' },
  TOKEN_CLAIMS_INVALID: { code: -32006, message: 'Token claims invalid', description: 'A required claim (exp, iss, aud, tenant) is missing or wrong, or `nbf` is in the future.' },
  PERMISSION_DENIED: { code: -32010, message: 'Permission denied', description: "The token's roles do not grant the method's permission." },

  JOB_NOT_FOUND: { code: -32020, message: 'Job not found', description: 'No such job visible to this tenant.' },
  JOB_ALREADY_FINISHED: { code: -32021, message: 'Job already finished', description: 'The job has ended; it cannot be cancelled or changed.' },
  IDEMPOTENCY_CONFLICT: { code: -32022, message: 'Idempotency key reused', description: 'The idempotency key was used before with a different request.' },
  JOB_STILL_RUNNING: { code: -32023, message: 'Job still running', description: 'The job has not ended (queued, running or paused); only a finished job can be resumed.' },
  NO_CHECKPOINT: { code: -32024, message: 'No such checkpoint', description: 'The job has no checkpoint matching the selector (best, latest or {run, iteration}).' },
  JOB_NOT_RESUMABLE: {
    code: -32025,
    message: 'Job cannot be resumed',
    description:
      'The job has no stored input to start a new run from, or to know its held-out queries for an evaluation (started before inputs were stored, or outside the API).',
  },
  POLICY_NOT_FOUND: { code: -32026, message: 'No such policy version', description: 'The agent has no policy version (none promoted yet), or not the one named, in this tenant.' },
  PROMOTION_REFUSED: {
    code: -32027,
    message: 'Promotion refused',
    description:
      "The checkpoint's test-split evaluation does not show a significant improvement over the active version (or there is no such evaluation); the message says what is missing. An admin may force it with a reason.",
  },
  CHECKPOINT_UNREADABLE: {
    code: -32029,
    message: 'Checkpoint unreadable',
    description:
      "The checkpoint's stored payload is missing or does not match the sha256 recorded with it, so it was not used; data names the run and iteration. Choose another checkpoint (training.list_checkpoints shows which load) or restore the blob from a backup.",
  },
  POLICY_VERSION_CONFLICT: { code: -32028, message: 'Policy version conflict', description: "Another promotion or rollback of the agent landed meanwhile; read the versions and decide again." },
  EXPORT_LIMIT_EXCEEDED: { code: -32030, message: 'Export limit exceeded', description: 'More than 10,000 trajectories asked for in one call; page with limit/offset.' },

  REQUEST_TOO_LARGE: { code: -32040, message: 'Request body too large', description: 'The HTTP body exceeds the configured size limit.' },
  BATCH_TOO_LARGE: { code: -32041, message: 'Batch too large', description: 'The batch holds more requests than the configured limit.' },
  RATE_LIMITED: { code: -32042, message: 'Rate limit exceeded', description: 'Too many requests for this token; retry after the indicated time.' },
  UNSUPPORTED_MEDIA_TYPE: { code: -32043, message: 'Unsupported media type', description: 'The body must be sent as application/json.' },
  REQUEST_TIMEOUT: {
    code: -32044,
    message: 'Request timeout',
    description: 'The request (its headers within 10 s, all of it within FLOW_API_REQUEST_TIMEOUT_MS, default 30 s) did not arrive in time; the connection is closed (HTTP 408).',
  },
  TOO_MANY_CONNECTIONS: {
    code: -32045,
    message: 'Too many connections',
    description:
      'The API holds FLOW_API_MAX_CONNECTIONS connections (default 4096) and every one has a request in progress (idle keep-alive connections are closed first to make room); the new connection is answered 503 and closed. Retry later.',
  },
  UNAVAILABLE: { code: -32050, message: 'Service unavailable', description: 'Temporal or PostgreSQL cannot be reached; retry later.' },
  NAMESPACE_NOT_READY: {
    code: -32051,
    message: 'Temporal namespace not ready',
    description:
      "The API's Temporal namespace does not exist or lacks Flow's search attributes (FlowAgentId, FlowJobStatus, FlowPriority); data names the missing ones and the command that registers them. Nothing was written.",
  },
} as const;

export type RpcErrorName = keyof typeof RPC_ERRORS;

/** An error a method answers with; `detail` is the human sentence saying what to fix. */
export class FlowRpcError extends JSONRPCErrorException {
  constructor(
    readonly errorName: RpcErrorName,
    detail?: string,
    data?: Record<string, unknown>,
  ) {
    const spec = RPC_ERRORS[errorName];
    super(detail ? `${spec.message}: ${detail}` : spec.message, spec.code, { reason: errorName.toLowerCase(), ...data });
    // The library's ES5 build resets the prototype to its own class, which would make
    // `instanceof FlowRpcError` false for every instance.
    Object.setPrototypeOf(this, new.target.prototype);
    this.name = 'FlowRpcError';
  }
}

export function rpcErrorBody(errorName: RpcErrorName, detail?: string, data?: Record<string, unknown>) {
  const spec = RPC_ERRORS[errorName];
  return {
    code: spec.code,
    message: detail ? `${spec.message}: ${detail}` : spec.message,
    data: { reason: errorName.toLowerCase(), ...data },
  };
}

/** A checkpoint that failed its integrity check, told without where the blob store is. */
export function checkpointUnreadable(error: { summary: string; run: number; iteration: number }): FlowRpcError {
  return new FlowRpcError('CHECKPOINT_UNREADABLE', `${error.summary}: choose another checkpoint (training.list_checkpoints shows which load) or restore its blob from a backup`, {
    run: error.run,
    iteration: error.iteration,
  });
}
