/**
 * The `tools` environment's real tools: the mathjs calculator (and what it refuses), the
 * allow-listed HTTP fetch against real local servers (on and off the list, redirects, size and
 * time limits), the answer judge, and the simulated model's use of the tools.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculate, formatNumber, MAX_EXPRESSION_CHARS } from '../../activities/tools/calculator';
import { httpFetch, parseAllowList, refusalOf } from '../../activities/tools/httpFetch';
import { simulatedToolUserTurn, TOOLS_GIVE_UP_ANSWER } from '../../workers/dev/simulatedToolUser';
import { answersMatch, normaliseAnswer, ToolsEnvironment } from '../../activities/tools/toolsEnvironment';

describe('calculator', () => {
  test.each([
    ['(12 + 7) * 3 / 4', '14.25'],
    ['0.1 + 0.2', '0.3'],
    ['2^10', '1024'],
    ['sqrt(16) + abs(-2) + round(2.6) + floor(1.9) + ceil(0.1)', '11'],
    ['10 % 3', '1'],
    ['max(1, 5, 2) - min(4, 3)', '2'],
    ['cos(pi)', '-1'],
    ['log(e) + log10(100) + log2(8) + cbrt(27) + exp(0)', '10'],
    ['-(3) + +4', '1'],
  ])('%s = %s', (expression, expected) => {
    expect(calculate(expression)).toEqual({ output: expected, error: null });
  });

  test.each(['import({}, {override: true})', 'evaluate("1+1")', 'parse("1")', 'compile("1")', 'createUnit("foo")', 'simplify("x+x")', 'derivative("x^2", "x")'])(
    'refuses %s: nothing in an expression reaches the parser or the instance',
    (expression) => {
      const name = expression.slice(0, expression.indexOf('('));
      expect(calculate(expression).error).toContain(`function ${name} is not available in the calculator`);
    },
  );

  test.each(['ones(10000, 10000)', 'range(1, 1e9)', 'a + 1'])('%s is unknown to the limited instance', (expression) => {
    expect(calculate(expression).error).toMatch(/Undefined (function|symbol)/);
  });

  test.each(['1/0', '[1, 2, 3]', '"text"', 'f(x) = x^2'])('%s is not a finite number', (expression) => {
    expect(calculate(expression).error).toContain('does not evaluate to a finite number');
  });

  test('a syntax error carries mathjs reason', () => {
    expect(calculate('2 +* 3').error).toMatch(/^cannot evaluate "2 \+\* 3": /);
  });

  test('variables do not survive between calls', () => {
    expect(calculate('x = 3').output).toBe('3');
    expect(calculate('x + 1').error).toContain('Undefined symbol x');
  });

  test('missing, non-string and too-long expressions are refused, naming the field', () => {
    expect(calculate(undefined).error).toBe('calculator needs {"expression": string}, got nothing');
    expect(calculate(42).error).toBe('calculator needs {"expression": string}, got 42');
    expect(calculate('  ').error).toContain('calculator needs');
    expect(calculate('1+'.repeat(MAX_EXPRESSION_CHARS)).error).toContain(`takes at most ${MAX_EXPRESSION_CHARS}`);
  });

  test('formatNumber keeps 14 significant digits', () => {
    expect(formatNumber(1 / 3)).toBe('0.33333333333333');
    expect(formatNumber(1e21)).toBe('1e+21');
  });
});

describe('http_fetch', () => {
  let server: http.Server;
  let port: number;
  let other: http.Server;
  let otherPort: number;
  const hanging: http.ServerResponse[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const route = req.url ?? '/';
      if (route === '/answer') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('forty-two');
      if (route === '/missing') return void res.writeHead(404).end('not here');
      if (route === '/big') return void res.writeHead(200).end('x'.repeat(5000));
      if (route === '/slow') return void hanging.push(res);
      if (route === '/hop') return void res.writeHead(302, { location: '/answer' }).end();
      if (route === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
      if (route === '/away') return void res.writeHead(302, { location: `http://127.0.0.1:${otherPort}/secret` }).end();
      res.writeHead(500).end();
    });
    other = http.createServer((_req, res) => res.end('secret'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    otherPort = (other.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    other.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await new Promise((resolve) => other.close(resolve));
  });
  const allow = () => [`127.0.0.1:${port}`];

  test('fetches an allow-listed host and returns status and body', async () => {
    expect(await httpFetch(`http://127.0.0.1:${port}/answer`, { allow: allow() })).toEqual({ output: 'HTTP 200\nforty-two', error: null });
  });

  test('another port of an allowed host, another host, another scheme and credentials are refused before any request', async () => {
    const off = await httpFetch(`http://127.0.0.1:${otherPort}/secret`, { allow: allow() });
    expect(off).toEqual({ output: '', error: expect.stringContaining(`host 127.0.0.1:${otherPort} is not on the fetch allow-list (127.0.0.1:${port}; set FLOW_HTTP_FETCH_ALLOW)`) });
    expect((await httpFetch('http://example.com/', { allow: [] })).error).toContain('(empty; set FLOW_HTTP_FETCH_ALLOW)');
    expect((await httpFetch('file:///etc/passwd', { allow: allow() })).error).toBe('only http and https URLs can be fetched, not file:');
    expect((await httpFetch(`http://user:pw@127.0.0.1:${port}/answer`, { allow: allow() })).error).toBe('URLs with credentials are refused');
  });

  test('a bare host entry allows the scheme default port only', () => {
    expect(refusalOf(new URL('https://api.example.com/x'), ['api.example.com'])).toBeNull();
    expect(refusalOf(new URL('http://api.example.com/x'), ['api.example.com'])).toBeNull();
    expect(refusalOf(new URL('http://api.example.com:8080/x'), ['api.example.com'])).toContain('api.example.com:8080 is not on');
    expect(refusalOf(new URL('https://API.Example.com:443/'), ['api.example.com:443'])).toBeNull();
  });

  test('redirects are followed only onto the allow-list, and only a few times', async () => {
    expect(await httpFetch(`http://127.0.0.1:${port}/hop`, { allow: allow() })).toEqual({ output: 'HTTP 200\nforty-two', error: null });
    const away = await httpFetch(`http://127.0.0.1:${port}/away`, { allow: allow() });
    expect(away.error).toBe(`redirect to http://127.0.0.1:${otherPort}/secret refused: host 127.0.0.1:${otherPort} is not on the fetch allow-list (127.0.0.1:${port}; set FLOW_HTTP_FETCH_ALLOW)`);
    expect((await httpFetch(`http://127.0.0.1:${port}/loop`, { allow: allow(), maxRedirects: 2 })).error).toBe('more than 2 redirects');
  });

  test('the body is cut at maxBytes and the output says so', async () => {
    const { output, error } = await httpFetch(`http://127.0.0.1:${port}/big`, { allow: allow(), maxBytes: 100 });
    expect(error).toBeNull();
    expect(output).toBe(`HTTP 200\n${'x'.repeat(100)}\n[cut at 100 bytes]`);
  });

  test('a non-2xx answer is returned with a tool error', async () => {
    expect(await httpFetch(`http://127.0.0.1:${port}/missing`, { allow: allow() })).toEqual({ output: 'HTTP 404\nnot here', error: `HTTP 404 from 127.0.0.1:${port}` });
  });

  test('a slow host is cut off at the time limit; a closed port is a connection error', async () => {
    expect((await httpFetch(`http://127.0.0.1:${port}/slow`, { allow: allow(), timeoutMs: 200 })).error).toBe(`fetching http://127.0.0.1:${port}/slow took longer than 200 ms`);
    const closed = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    expect((await httpFetch(`http://127.0.0.1:${closed}/`, { allow: [`127.0.0.1:${closed}`] })).error).toMatch(new RegExp(`^fetching http://127.0.0.1:${closed}/ failed: .*ECONNREFUSED`));
  });

  test('the trajectory signal aborts a fetch by throwing (the run stops, it is not a tool error)', async () => {
    const controller = new AbortController();
    const pending = httpFetch(`http://127.0.0.1:${port}/slow`, { allow: allow() }, controller.signal);
    setTimeout(() => controller.abort(new Error('trajectory over')), 50);
    await expect(pending).rejects.toThrow('trajectory over');
  });

  test('bad arguments are tool errors naming the field', async () => {
    expect((await httpFetch(undefined, { allow: [] })).error).toBe('http_fetch needs {"url": string}, got nothing');
    expect((await httpFetch('not a url', { allow: [] })).error).toBe('"not a url" is not a valid URL');
  });

  test('parseAllowList reads host and host:port entries and names a bad one', () => {
    expect(parseAllowList(undefined)).toEqual([]);
    expect(parseAllowList(' API.example.com, 127.0.0.1:8080 ,,[::1]:9000')).toEqual(['api.example.com', '127.0.0.1:8080', '[::1]:9000']);
    expect(() => parseAllowList('good.example, http://bad.example')).toThrow('FLOW_HTTP_FETCH_ALLOW: "http://bad.example" is not a host or host:port');
  });
});

describe('ToolsEnvironment', () => {
  const environment = new ToolsEnvironment({ allow: [] });
  const task = { id: 't1', prompt: 'What is `6 * 7`?', expected_answer: '42', expected_tool: 'calculator' };

  test('offers the calculator and http_fetch, runs them, and names an unknown tool', async () => {
    expect(environment.tools().map((tool) => tool.name)).toEqual(['calculator', 'http_fetch']);
    expect(await environment.executeTool(task, 'calculator', { expression: '6 * 7' })).toEqual({ output: '42', error: null });
    expect((await environment.executeTool(task, 'http_fetch', { url: 'http://example.com/' })).error).toContain('not on the fetch allow-list');
    expect(await environment.executeTool(task, 'shell', {})).toEqual({ output: '', error: 'unknown tool "shell"; available tools: calculator, http_fetch' });
  });

  test('judges the final answer against expected_answer, normalised', () => {
    expect(environment.judge(task, { finalAnswer: ' 42. ' })).toEqual({ success: true, verified: false });
    expect(environment.judge(task, { finalAnswer: '41' })).toEqual({ success: false, verified: false });
    expect(environment.judge(task, { finalAnswer: null })).toEqual({ success: false, verified: false });
    expect(() => environment.judge({ id: 'x', prompt: 'p' }, { finalAnswer: '1' })).toThrow('task "x" has no expected_answer');
  });

  test('answersMatch: case, spacing, full stop, number formatting', () => {
    expect(normaliseAnswer('  Forty   Two.  ')).toBe('forty two');
    expect(answersMatch('FORTY two', 'forty two.')).toBe(true);
    expect(answersMatch('14.250', '14.25')).toBe(true);
    expect(answersMatch('1,024', '1024')).toBe(true);
    expect(answersMatch('1e3', '1000')).toBe(true);
    expect(answersMatch('0.30000000000000004', '0.3')).toBe(true);
    expect(answersMatch('14.26', '14.25')).toBe(false);
    expect(answersMatch('12 apples', '12')).toBe(false);
  });
});

describe('the simulated model with real tools', () => {
  const tools = ['calculator', 'http_fetch'];
  const user = (content: string) => [{ role: 'system' as const, content: 's' }, { role: 'user' as const, content }];

  test('fetches a URL named in the task, then answers with the body', () => {
    const messages = user('Fetch http://127.0.0.1:9/answer and report what it says.');
    expect(simulatedToolUserTurn(messages, tools)).toEqual({ type: 'tool_call', tool: 'http_fetch', arguments: { url: 'http://127.0.0.1:9/answer' } });
    const after = [...messages, { role: 'assistant' as const, content: null }, { role: 'tool' as const, content: 'HTTP 200\n  forty-two \n' }];
    expect(simulatedToolUserTurn(after, tools)).toEqual({ type: 'final_answer', content: 'forty-two' });
  });

  test('calculates the backticked or the longest arithmetic in the task, then answers with the result', () => {
    expect(simulatedToolUserTurn(user('What is `sqrt(16) * 2`?'), tools)).toEqual({ type: 'tool_call', tool: 'calculator', arguments: { expression: 'sqrt(16) * 2' } });
    expect(simulatedToolUserTurn(user('Task 7: compute (12 + 7) * 3 / 4 please'), tools)).toEqual({ type: 'tool_call', tool: 'calculator', arguments: { expression: '(12 + 7) * 3 / 4' } });
    const after = [...user('x'), { role: 'tool' as const, content: '14.25' }];
    expect(simulatedToolUserTurn(after, tools)).toEqual({ type: 'final_answer', content: '14.25' });
  });

  test('gives up after a tool error or when nothing in the task fits a tool; not its turn without the real tools', () => {
    expect(simulatedToolUserTurn([...user('x'), { role: 'tool' as const, content: 'error: refused' }], tools)).toEqual({ type: 'final_answer', content: TOOLS_GIVE_UP_ANSWER });
    expect(simulatedToolUserTurn(user('Tell me a story.'), tools)).toEqual({ type: 'final_answer', content: TOOLS_GIVE_UP_ANSWER });
    expect(simulatedToolUserTurn(user('x'), ['web_search', 'verify_answer'])).toBeNull();
    // The simulated environment offers a `calculator` too, but never http_fetch: its agent plays on.
    expect(simulatedToolUserTurn(user('What is 2 * 3?'), ['lookup_docs', 'calculator', 'query_database', 'web_search', 'verify_answer'])).toBeNull();
  });
});
