/**
 * Every mermaid diagram in the docs and the README renders without error: each is rendered by
 * the `mermaid` package in Debian's headless Chromium (driven by playwright-core), as a Markdown
 * viewer would. The architecture diagrams must also match the code: every path they name exists,
 * and every top-level source folder appears in them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../workers/dev/devStack';

const CHROMIUM = process.env.FLOW_CHROMIUM_PATH ?? '/usr/bin/chromium';
const MERMAID_BUNDLE = path.join(path.dirname(require.resolve('mermaid')), 'mermaid.min.js');
const SOURCE_FOLDERS = ['training', 'workflows', 'activities', 'adapters', 'workers', 'api', 'prisma'];

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return markdownFiles(full);
    return entry.endsWith('.md') ? [full] : [];
  });
}

/** The ```mermaid blocks of a Markdown file, with the line each starts on. */
function mermaidBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```mermaid') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end].trim() !== '```') end++;
    blocks.push({ line: start, code: lines.slice(start, end).join('\n') });
    i = end;
  }
  return blocks;
}

const files = [path.join(PROJECT_ROOT, 'README.md'), ...markdownFiles(path.join(PROJECT_ROOT, 'docs'))].filter(existsSync);
const diagrams = files.flatMap((file) => mermaidBlocks(readFileSync(file, 'utf8')).map((block) => ({ where: `${path.relative(PROJECT_ROOT, file)}:${block.line}`, code: block.code })));

let browser: Browser;
let page: Page;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  page = await browser.newPage();
  await page.setContent('<!doctype html><html><body></body></html>');
  await page.addScriptTag({ path: MERMAID_BUNDLE });
  await page.evaluate('mermaid.initialize({ startOnLoad: false, securityLevel: "strict" })');
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

/** Renders one diagram in the page; resolves with the SVG or with mermaid's error message. */
async function render(code: string, id: string): Promise<{ svg?: string; error?: string }> {
  return page.evaluate(
    `(async () => {
      try {
        const { svg } = await mermaid.render(${JSON.stringify(id)}, ${JSON.stringify(code)});
        return { svg };
      } catch (error) {
        return { error: String(error && error.message ? error.message : error) };
      }
    })()`,
  );
}

test('the docs have diagrams, and the architecture page has at least four', () => {
  expect(diagrams.filter((d) => d.where.startsWith('docs/architecture.md')).length).toBeGreaterThanOrEqual(4);
});

test.each(diagrams.map((d) => [d.where, d.code] as const))('%s renders without error', async (where, code) => {
  const id = `diagram-${where.replace(/[^a-z0-9]/gi, '-')}`;
  const result = await render(code, id);
  expect({ where, error: result.error }).toEqual({ where, error: undefined });
  expect(result.svg).toMatch(/^<svg[\s\S]*<\/svg>$/);
  // A diagram that parses but draws nothing is not a diagram.
  expect(result.svg!.length).toBeGreaterThan(1000);
});

test('a broken diagram is reported as an error (the check can fail)', async () => {
  const result = await render('flowchart LR\n  a -->', 'diagram-broken');
  expect(result.error).toMatch(/Parse error|Syntax error|Expecting/i);
});

test('the architecture diagrams name only paths that exist, and every source folder', () => {
  const architecture = readFileSync(path.join(PROJECT_ROOT, 'docs', 'architecture.md'), 'utf8');
  const code = mermaidBlocks(architecture)
    .map((block) => block.code)
    .join('\n');
  const named = [...code.matchAll(/\b((?:training|workflows|activities|workers|api|prisma|generated|examples|scripts|tests|helm)\/[\w./-]*)/g)].map((m) => m[1].replace(/[.,]$/, ''));
  expect(named.length).toBeGreaterThan(15);
  const missing = [...new Set(named)].filter((name) => !existsSync(path.join(PROJECT_ROOT, name)));
  expect(missing).toEqual([]);
  for (const folder of SOURCE_FOLDERS) expect([folder, code.includes(`${folder}/`)]).toEqual([folder, true]);
});
