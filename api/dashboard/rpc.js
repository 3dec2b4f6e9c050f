// The dashboard's JSON-RPC 2.0 client: the same POST /rpc and bearer token as every other client.

export class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data;
  }

  /** A token the server refused (missing, malformed, expired, bad signature, claims). */
  get isAuthError() {
    return this.code <= -32001 && this.code >= -32006;
  }
}

let nextId = 1;

/** Calls one method; resolves with its result or rejects with an RpcError. */
export async function rpc(token, method, params = {}) {
  const response = await fetch(new URL('rpc', document.baseURI), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new RpcError(-32603, `the server answered HTTP ${response.status} without a JSON body`);
  }
  if (body.error) throw new RpcError(body.error.code, body.error.message, body.error.data);
  return body.result;
}
