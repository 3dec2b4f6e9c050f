/**
 * A tiny OTLP/HTTP trace receiver for tests: `POST /v1/traces` with the JSON encoding that
 * @opentelemetry/exporter-trace-otlp-http sends. Keeps every span with the resource it came
 * from (service name and process id), so a test can follow one trace across processes.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: number;
  service: string;
  pid: number | null;
  attributes: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT (exporters append /v1/traces). */
  url: string;
  spans: ReceivedSpan[];
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
type OtlpAttributes = { key: string; value: OtlpValue }[] | undefined;

const valueOf = (value: OtlpValue): unknown => value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.doubleValue ?? value.boolValue));
const attributesOf = (attributes: OtlpAttributes) => Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, valueOf(value)]));

/** Ids arrive as hex (the JS exporter) or base64 (the proto3 JSON mapping); both become hex. */
function hexId(id: string | undefined): string | null {
  if (!id) return null;
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 16 || id.length === 32)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const server = createServer(async (request, response) => {
    if (request.method !== 'POST' || request.url !== '/v1/traces') return void response.writeHead(404).end();
    if (!String(request.headers['content-type']).startsWith('application/json')) return void response.writeHead(415).end();
    const body = JSON.parse(await readBody(request)) as {
      resourceSpans?: { resource?: { attributes?: OtlpAttributes }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
    };
    for (const resourceSpans of body.resourceSpans ?? []) {
      const resource = attributesOf(resourceSpans.resource?.attributes);
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          spans.push({
            traceId: hexId(span.traceId as string)!,
            spanId: hexId(span.spanId as string)!,
            parentSpanId: hexId(span.parentSpanId as string | undefined),
            name: span.name as string,
            kind: span.kind as number,
            service: String(resource['service.name']),
            pid: typeof resource['process.pid'] === 'number' ? (resource['process.pid'] as number) : null,
            attributes: attributesOf(span.attributes as OtlpAttributes),
          });
        }
      }
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
