/**
 * A stand-in for the local model (issue 13) in tests that need its wiring, not its weights: a GGUF
 * header the launcher can read and a fake venv whose "python" is a small Node HTTP server speaking
 * the OpenAI chat-completions protocol as llama.cpp does (address line, /health, stdin/SIGTERM stop).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A GGUF header good enough for the launcher (it reads the name), and a fake venv whose python runs `behaviour`. */
export function fakeLocalModel(home: string, behaviour: 'serve' | 'exit' | 'garbage'): NodeJS.ProcessEnv {
  mkdirSync(path.join(home, 'venv', 'bin'), { recursive: true });
  const str = (s: string) => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(s)));
    return Buffer.concat([len, Buffer.from(s)]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const gguf = path.join(home, 'model.gguf');
  writeFileSync(gguf, Buffer.concat([Buffer.from('GGUF'), u32(3), Buffer.alloc(8), Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), str('general.architecture'), u32(8), str('qwen2'), str('general.name'), u32(8), str('Fake Qwen')]));
  const server = path.join(home, 'server.js');
  writeFileSync(
    server,
    `const http = require('node:http');
const behaviour = ${JSON.stringify(behaviour)};
let inflight = 0, maxInflight = 0;
// Schema-forced agent calls: prose first (an invalid output), then a final answer; the updater: no lessons.
const reply = (request) => {
  const format = request.response_format && request.response_format.json_schema && request.response_format.json_schema.name;
  if (format === 'tool_call') return request.messages.length === 2 ? 'I would look this up in the database.' : JSON.stringify({ tool: 'final_answer', arguments: { answer: 'I do not know' } });
  if (format === 'lessons') return JSON.stringify({ lessons: [] });
  return 'model ' + request.model + ' max in flight ' + maxInflight;
};
if (behaviour === 'exit') { console.error('llama: failed to load model'); process.exit(3); }
if (behaviour === 'garbage') { console.log('not json'); setInterval(() => {}, 1000); return; }
const s = http.createServer((req, res) => {
  if (req.url === '/health') return res.end('{"status":"ok"}');
  let body = ''; req.on('data', (c) => body += c); req.on('end', () => {
    const request = JSON.parse(body);
    inflight += 1; maxInflight = Math.max(maxInflight, inflight);
    setTimeout(() => {
      inflight -= 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ choices: [{ finish_reason: 'stop', message: { role: 'assistant', content: reply(request) }, logprobs: { content: [{ logprob: -0.5 }, { logprob: -0.25 }] } }], usage: { prompt_tokens: 12, completion_tokens: 2 } }));
    }, 30);
  });
}).listen(0, '127.0.0.1', () => console.log(JSON.stringify({ address: 'http://127.0.0.1:' + s.address().port })));
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));`,
  );
  const python = path.join(home, 'venv', 'bin', 'python');
  writeFileSync(python, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(server)}\n`);
  chmodSync(python, 0o755);
  return { FLOW_LOCAL_MODEL_DIR: home, FLOW_LOCAL_MODEL: gguf };
}
