/**
 * The training dashboard's files: the page at `/`, its modules under `/dashboard/`, and the
 * browser builds of its libraries (preact, htm, chart.js) straight from node_modules under
 * `/vendor/<package>/` — no build step, no CDN. The page is static; everything it shows comes
 * from `POST /rpc` with the token the user gives it, like any other client.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** The browser files each library ships, by package: only these folders are served. */
const VENDOR_FOLDERS: Record<string, string[]> = {
  preact: ['dist', 'hooks/dist'],
  htm: ['dist', 'preact'],
  'chart.js': ['dist'],
};

/** A package's folder; found from its entry point because some packages do not export package.json. */
export function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`the package "${name}" has no package.json above ${require.resolve(name)}`);
    dir = parent;
  }
}

/**
 * The page's Content-Security-Policy: scripts, styles and fetches from this server only, the one
 * inline script (the import map) by its hash, never framed (clickjacking), no plugins.
 */
export function dashboardContentSecurityPolicy(html: string): string {
  const inline = [...html.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).filter((body) => body.trim() !== '');
  const hashes = inline.map((body) => `'sha256-${createHash('sha256').update(body).digest('base64')}'`);
  return [
    "default-src 'self'",
    `script-src 'self' ${hashes.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const here = __dirname;
  const policy = dashboardContentSecurityPolicy(readFileSync(path.join(here, 'index.html'), 'utf8'));
  // Every file under this plugin (the page, its modules, the vendored libraries) carries them.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', policy);
    reply.header('x-frame-options', 'DENY');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
  });
  await app.register(fastifyStatic, { root: here, prefix: '/dashboard/', allowedPath: (file) => /\.(js|css|html|svg)$/.test(file), index: false });
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').sendFile('index.html', here));
  for (const [name, folders] of Object.entries(VENDOR_FOLDERS)) {
    const root = packageDir(name);
    for (const folder of folders) {
      await app.register(fastifyStatic, {
        root: path.join(root, folder),
        prefix: `/vendor/${name}/${folder}/`,
        decorateReply: false,
        index: false,
        allowedPath: (file) => /\.(m?js|css)$/.test(file),
      });
    }
  }
}
