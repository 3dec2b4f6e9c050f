/**
 * The dashboard in a real browser (Debian's headless Chromium driven by playwright-core) against
 * the real stack: the API server, a training worker, PostgreSQL, and a Temporal dev server of
 * this file's own WITH its Web UI (the suite's shared server is headless). A user opens the
 * dashboard with a token, starts a job from the page, watches its curves grow, cancels it, sees
 * it `cancelled`, resumes it from a checkpoint, and follows the link into the Temporal Web UI,
 * where the same workflow shows Flow's search attributes; and an agent's policy registry, with its
 * buttons only for those allowed. Screenshots go to .flow/test/;
 * FLOW_UPDATE_SCREENSHOTS=1 also replaces docs/images/dashboard.png (the README's picture).
 *
 * @suiteLock isolated (it turns the kill switch on, which reaches every job of an install; tests/support/suiteEnvironment.ts)
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort, PROJECT_ROOT, startTemporal, type TemporalServer } from '../../workers/dev/devStack';
import { startHarness, type Harness } from '../support/harness';
import { rpcError, startApiHarness, waitFor, withOwnKillSwitch, writeVersions, type ApiHarness } from '../support/apiHarness';
import { blobStoreFromEnv } from '../../adapters/checkpoints/blobStore';
import { JOB_STATUSES } from '../../training/jobStatus';

const CHROMIUM = process.env.FLOW_CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(PROJECT_ROOT, '.flow', 'test');
const README_PICTURE = path.join(PROJECT_ROOT, 'docs', 'images', 'dashboard.png');

let temporal: TemporalServer;
let harness: Harness;
let api: ApiHarness;
let worker: Awaited<ReturnType<ApiHarness['startWorker']>>;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
const savedEnv = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE: process.env.TEMPORAL_NAMESPACE, FLOW_TEMPORAL_UI_URL: process.env.FLOW_TEMPORAL_UI_URL };

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  temporal = await startTemporal({ uiPort: await freePort(), logFile: path.join(SHOTS, 'dashboard-temporal.log') });
  // The harness connects to TEMPORAL_ADDRESS once, at start: point it at this file's server and
  // its default namespace (the file's own database comes from its isolated install).
  process.env.TEMPORAL_ADDRESS = temporal.address;
  process.env.TEMPORAL_NAMESPACE = 'default';
  try {
    harness = await startHarness();
  } finally {
    // Both are set: the suite's globalSetup and the file's isolated install set them.
    process.env.TEMPORAL_ADDRESS = savedEnv.TEMPORAL_ADDRESS;
    process.env.TEMPORAL_NAMESPACE = savedEnv.TEMPORAL_NAMESPACE;
  }
  // The API reads FLOW_TEMPORAL_UI_URL when the dashboard asks where the Web UI is.
  process.env.FLOW_TEMPORAL_UI_URL = `${temporal.uiUrl}/`;
  api = await startApiHarness({ harness });
  worker = await api.startWorker();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  page = await browser.newPage({ viewport: { width: 1360, height: 1100 } });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${message.text()} (${message.location().url})`);
  });
}, 120_000);

afterAll(async () => {
  if (savedEnv.FLOW_TEMPORAL_UI_URL === undefined) delete process.env.FLOW_TEMPORAL_UI_URL;
  else process.env.FLOW_TEMPORAL_UI_URL = savedEnv.FLOW_TEMPORAL_UI_URL;
  await browser?.close();
  await worker?.stop();
  await api?.close();
  await harness?.close();
  await temporal?.stop();
});

const statusOf = (selector = '[data-testid="job-page"] [data-testid="status"]') => page.locator(selector).first().textContent();
const points = async (chart: string) => Number(await page.locator(`[data-testid="${chart}"]`).getAttribute('data-points'));

test('serves the page and the libraries it loads from node_modules, and nothing else from there', async () => {
  const index = await fetch(`${api.url}/`);
  expect(index.status).toBe(200);
  expect(index.headers.get('content-type')).toMatch(/^text\/html/);
  expect(await index.text()).toContain('dashboard/app.js');
  for (const file of ['/dashboard/app.js', '/vendor/preact/dist/preact.module.js', '/vendor/preact/hooks/dist/hooks.module.js', '/vendor/htm/preact/index.mjs', '/vendor/chart.js/dist/chart.umd.min.js']) {
    const response = await fetch(`${api.url}${file}`);
    expect([file, response.status]).toEqual([file, 200]);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
  }
  // Not the dashboard's server-side code, not other packages' files, not a way out of the folders.
  for (const file of ['/dashboard/routes.ts', '/vendor/preact/package.json', '/vendor/jose/dist/index.js', '/dashboard/../server.ts', '/vendor/preact/dist/../package.json']) {
    expect([file, (await fetch(`${api.url}${file}`)).status]).toEqual([file, 404]);
  }
});

test('the lesson diff, as the page loads it: added, edited, reweighted, dropped and unchanged lessons, by id', async () => {
  await page.goto(`${api.url}/`);
  const before = [
    { id: 'a', text: 'call lookup first', weight: 0.5 },
    { id: 'b', text: 'verify the answer', weight: 0.4 },
    { id: 'c', text: 'say thanks', weight: 0.3 },
    { id: 'd', text: 'ask twice', weight: 0.2 },
  ];
  const after = [
    { id: 'e', text: 'use the calculator', weight: 0.6 },
    { id: 'a', text: 'call lookup first', weight: 0.5 },
    { id: 'b', text: 'verify the answer with the verifier', weight: 0.5 },
    { id: 'c', text: 'say thanks', weight: 0.35 },
  ];
  const diff = (await page.evaluate(
    `import('./dashboard/lessonDiff.js').then(({ diffLessons, summarizeDiff }) => {
      const rows = diffLessons(${JSON.stringify(before)}, ${JSON.stringify(after)});
      return { kinds: rows.map((row) => [row.kind, row.id]), counts: summarizeDiff(rows) };
    })`,
  )) as { kinds: [string, string][]; counts: Record<string, number> };
  expect(diff.kinds).toEqual([
    ['added', 'e'],
    ['edited', 'b'],
    ['reweighted', 'c'],
    ['dropped', 'd'],
    ['unchanged', 'a'],
  ]);
  expect(diff.counts).toEqual({ added: 1, edited: 1, reweighted: 1, dropped: 1, unchanged: 1 });
});

test('the dashboard asks for a token, and a token the server refuses sends the user back to it', async () => {
  await page.goto(`${api.url}/`);
  await page.getByText('Paste an API token').waitFor();
  await page.locator('textarea[name="token"]').fill('not-a-jwt');
  await page.getByRole('button', { name: 'Open the dashboard' }).click();
  await page.getByText('The server refused the token').waitFor();
});

test('a mangled link (not valid percent-encoding) shows a message, not a blank page, and the page still works', async () => {
  pageErrors.length = 0;
  await page.goto('about:blank');
  await page.goto(`${api.url}/#token=${await api.token()}`);
  await page.getByRole('button', { name: 'sign out' }).waitFor();
  for (const link of ['#/agents/%E0%A4%A', '#/jobs/%E0%A4%A', '#/jobs/job-1/runs/1/iterations/1/trajectories/%ZZ']) {
    await page.goto(`${api.url}/${link}`);
    await page.locator('[data-testid="bad-link"]').waitFor();
    expect(await page.locator('[data-testid="bad-link"]').textContent()).toContain('This link is not valid');
  }
  await page.getByRole('link', { name: 'All jobs' }).click();
  await page.locator('[data-testid="bad-link"]').waitFor({ state: 'detached' });
  expect(pageErrors).toEqual([]);
});

test('the registry page shows the newest 50 versions and loads older ones on demand', async () => {
  pageErrors.length = 0;
  const agentId = `many-versions-${process.pid}`;
  await writeVersions(api.h.repos, 'tenant-a', agentId, 55);
  await page.goto('about:blank');
  await page.goto(`${api.url}/#token=${await api.token()}`);
  await page.getByRole('button', { name: 'sign out' }).waitFor();
  await page.goto(`${api.url}/#/agents/${encodeURIComponent(agentId)}`);
  await page.locator('[data-testid="version-row"]').first().waitFor();
  expect(await page.locator('[data-testid="version-row"]').count()).toBe(50);
  await page.locator('[data-testid="older-versions"]').click();
  await page.locator('[data-testid="version-row"][data-version="1"]').waitFor();
  expect(await page.locator('[data-testid="version-row"]').count()).toBe(55);
  expect(await page.locator('[data-testid="older-versions"]').count()).toBe(0);
  expect(await page.locator('[data-testid="version-row"][data-version="55"] [data-testid="active"]').count()).toBe(1);
  expect(pageErrors).toEqual([]);
});

test('start a job from the page, watch its curves grow, cancel it, see it cancelled, resume it from a checkpoint, then find it in the Temporal Web UI', async () => {
  // Slow enough to watch a few iterations arrive, fast enough for a test.
  harness.model.setLatency(40);
  const token = await api.token();
  await page.goto(`${api.url}/?refresh_ms=300#token=${token}`);
  // The token left the address bar for this tab's storage.
  await page.waitForURL((url) => !url.hash.includes('token'));
  await page.locator('[data-testid="start-form"]').waitFor();

  const agent = `dash-${Date.now()}`;
  await page.locator('input[name="agent_id"]').fill(agent);
  await page.locator('input[name="iterations"]').fill('40');
  await page.locator('input[name="group_size"]').fill('4');
  await page.locator('input[name="batch_size"]').fill('1');
  await page.locator('[data-testid="start-job"]').click();

  await page.waitForURL(/#\/jobs\/job-/);
  const jobId = (await page.locator('[data-testid="job-id"]').textContent())!;
  expect(jobId).toMatch(/^job-/);
  // The job is the API's: same tenant and owner as the token, started with the form's values.
  const started = await (await api.client()).getStatus(jobId);
  expect(started).toMatchObject({ agent_id: agent, tenant_id: 'tenant-a', owner_id: 'alice', iterations: 40 });

  // The curve grows while we watch: one point per finished iteration.
  const seen = await waitFor(() => points('curves'), (n) => n >= 2, 60_000, 100);
  await waitFor(() => points('curves'), (n) => n > seen, 60_000, 100);
  expect(await points('curves')).toBeGreaterThan(seen);
  expect(await statusOf()).toBe('running');
  expect(await points('spend')).toBeGreaterThanOrEqual(2);
  await page.locator('[data-testid="checkpoint-row"]').first().waitFor();
  // A running job cannot be resumed: the button says so by being disabled.
  expect(await page.locator('[data-testid="resume"]').first().isDisabled()).toBe(true);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-running.png'), fullPage: true });

  // The jobs list shows it live, with its progress and spend.
  await page.locator('a', { hasText: 'all jobs' }).click();
  const row = page.locator(`[data-testid="job-row"][data-job-id="${jobId}"]`);
  await row.waitFor();
  expect(await row.locator('[data-testid="status"]').textContent()).toBe('running');
  expect(await row.textContent()).toContain(agent);
  expect(await row.textContent()).toMatch(/\d+\/40/);
  expect(await row.textContent()).toMatch(/\$\d+\.\d+ \/ \$10\.00/);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-jobs.png'), fullPage: true });

  // Cancel from the job page (a second click confirms).
  await row.locator('a').click();
  await page.locator('[data-testid="cancel"]').click();
  await page.locator('[data-testid="confirm-cancel"]').click();
  await waitFor(() => statusOf(), (status) => status === 'cancelled', 60_000, 100);
  const cancelled = await (await api.client()).getStatus(jobId);
  expect(cancelled).toMatchObject({ status: 'cancelled', reason: expect.stringContaining('cancelled from the dashboard') });
  expect(await page.locator('[data-testid="cancel"]').count()).toBe(0);

  // The lesson library as it changed, between the last two checkpoints.
  const checkpoints = await api.post({ jsonrpc: '2.0', id: 1, method: 'training.list_checkpoints', params: { job_id: jobId } });
  const kept = checkpoints.body.result.checkpoints as { run: number; iteration: number; policy: { lessons: unknown[] } }[];
  expect(kept.length).toBeGreaterThanOrEqual(2);
  await waitFor(() => page.locator('[data-testid="checkpoint-row"]').count(), (n) => n === kept.length, 30_000, 100);
  await page.locator('[data-testid="lesson-diff"]').waitFor();
  const last = kept[kept.length - 1];
  expect(await page.locator('[data-testid="lesson-diff"]').textContent()).toContain(`to run ${last.run}, iteration ${last.iteration}`);
  expect(await page.locator('[data-testid="lesson-diff"] li').count()).toBe(last.policy.lessons.length + (await page.locator('[data-testid="lesson-diff"] li[data-kind="dropped"]').count()));
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-cancelled.png'), fullPage: true });

  // Resume from the first checkpoint: a second run starts from it.
  const first = kept[0];
  await page.locator('[data-testid="resume"]').first().click();
  await page.getByText(`run 2 started from run ${first.run}, iteration ${first.iteration}`).waitFor();
  const resumed = await waitFor(() => api.h.repos.jobs.get(jobId), (job) => job?.currentRun === 2 && job.status === 'running', 30_000);
  expect(resumed!.currentRun).toBe(2);
  await waitFor(() => statusOf(), (status) => status === 'running', 30_000, 100);
  await (await api.client()).cancel(jobId, 'test done');

  // The dashboard itself logged no error along the way (the Web UI's own console is not ours).
  expect(pageErrors).toEqual([]);

  // Into the Temporal Web UI, by the dashboard's own link.
  const href = (await page.locator('[data-testid="temporal-link"]').getAttribute('href'))!;
  expect(href).toBe(`${temporal.uiUrl}/namespaces/default/workflows/${jobId}`);
  await page.goto(href);
  await page.getByText(jobId).first().waitFor({ timeout: 60_000 });
  // The search attributes Flow sets, as the Web UI shows them for this workflow.
  const attributes = await findSearchAttributes(page, agent);
  // With their values: the agent's id (which the workflow input also holds, so the name alone proved little), a status and a priority.
  expect(attributes).toMatchObject({ FlowAgentId: agent, FlowPriority: expect.stringMatching(/^P[012]$/) });
  expect(JOB_STATUSES).toContain(attributes.FlowJobStatus);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-temporal-ui.png'), fullPage: true });
}, 240_000);

test('a finished job: its curves, the held-out evaluation with its p-value, and the lessons it learned (the README picture)', async () => {
  harness.model.setLatency(0);
  pageErrors.length = 0; // what the Temporal Web UI logged in the test before is not the dashboard's
  const flow = await api.client();
  const { job_id: jobId } = await flow.startGrpo({
    agent_id: 'support-agent',
    task_set: 'simulated',
    config: { iterations: 6, batch_size: 4, group_size: 6, checkpoint_interval: 1, eval_interval: 3, seed: 1 },
  });
  const done = await waitFor(() => flow.getStatus(jobId), (status) => !['queued', 'running'].includes(status.status), 120_000, 250);
  expect(done.status).toBe('completed');
  expect(done.evaluation).not.toBeNull();

  await page.goto(`${api.url}/#token=${await api.token()}`);
  await page.waitForURL((url) => url.hash === '#/');
  await page.goto(`${api.url}/#/jobs/${jobId}`);
  const evaluation = page.locator('[data-testid="evaluation"]');
  await evaluation.locator('[data-testid="p-value"]').waitFor();
  // The page shows the API's numbers: the verdict's p (success per query), Welch's per-episode p beside it, and the verdict.
  const p = done.evaluation!.welch.p;
  const format = (value: number) => (value < 0.0001 ? '< 0.0001' : value.toFixed(4));
  expect(await evaluation.locator('[data-testid="p-value"]').textContent()).toBe(`p = ${format(p)}`);
  const successP = done.evaluation!.success_test!.p;
  expect(await evaluation.locator('[data-testid="success-p-value"]').textContent()).toBe(`p = ${successP === null ? 'n/a' : format(successP)}`);
  expect(await evaluation.locator('[data-testid="significance"]').textContent()).toBe(done.evaluation!.significant_improvement ? 'significant improvement' : 'not significant');
  expect(await evaluation.locator('table').first().textContent()).toContain('success_rate');
  expect(await evaluation.locator('[data-testid="families"]').textContent()).toContain(done.evaluation!.families![0].family);
  await waitFor(() => points('curves'), (n) => n === 6, 30_000, 100);
  // The lessons it learned appear as added between the initial policy and later checkpoints.
  await page.locator('[data-testid="lesson-diff"]').waitFor();
  await page.locator('[data-testid="checkpoint-row"] button', { hasText: 'show changes' }).first().click();
  // The earliest checkpoint kept (the best 5 by score and the latest are kept, so iteration 1's
  // may have been pruned).
  const [earliest] = (await api.h.repos.progress.checkpoints(jobId)).sort((x, y) => x.run - y.run || x.iteration - y.iteration);
  expect(await page.locator('[data-testid="lesson-diff"]').textContent()).toContain(`From the initial policy to run 1, iteration ${earliest.iteration}`);
  await page.locator('[data-testid="checkpoint-row"] button', { hasText: 'show changes' }).last().click();
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-completed.png'), fullPage: true });
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-readme.png'), fullPage: false });
  // The committed README picture is replaced only on request, so a test run leaves the tree clean.
  if (process.env.FLOW_UPDATE_SCREENSHOTS === '1' || !existsSync(README_PICTURE)) await page.screenshot({ path: README_PICTURE, fullPage: false });
  expect(pageErrors).toEqual([]);
}, 180_000);

test('a job with policy hygiene: each lesson shows its provenance, linking to the trajectories it was learned from, and its counters', async () => {
  harness.model.setLatency(0);
  pageErrors.length = 0;
  const flow = await api.client();
  const { job_id: jobId } = await flow.startGrpo({
    agent_id: 'support-agent',
    task_set: 'simulated',
    config: { iterations: 5, batch_size: 4, group_size: 6, checkpoint_interval: 1, eval_interval: 10, seed: 2, policy_hygiene: true },
  });
  const done = await waitFor(() => flow.getStatus(jobId), (status) => !['queued', 'running'].includes(status.status), 120_000, 250);
  expect(done.status).toBe('completed');
  const checkpoints = await api.post({ jsonrpc: '2.0', id: 1, method: 'training.list_checkpoints', params: { job_id: jobId } });
  type Shown = { id: string; provenance?: { run: number; iteration: number; trajectory_ids: string[] }[]; counters?: { helpful: number; harmful: number } };
  const kept = checkpoints.body.result.checkpoints as { policy: { lessons: Shown[] } }[];
  const lessons = kept[kept.length - 1].policy.lessons;
  const withOrigin = lessons.filter((lesson) => (lesson.provenance?.[0]?.trajectory_ids.length ?? 0) > 0);
  expect(withOrigin.length).toBeGreaterThan(0);

  // A fresh load, so the page takes the token from the fragment (from the previous test's page a
  // fragment-only goto is a same-document navigation, and the page never loads again).
  await page.goto('about:blank');
  await page.goto(`${api.url}/#token=${await api.token()}`);
  await page.waitForURL((url) => url.hash === '#/');
  await page.goto(`${api.url}/#/jobs/${jobId}`);
  await page.locator('[data-testid="lesson-diff"]').waitFor();
  await waitFor(() => page.locator('[data-testid="checkpoint-row"]').count(), (n) => n === kept.length, 30_000, 100);
  const shown = page.locator('[data-testid="lesson-diff"] [data-testid="lesson-provenance"]');
  await shown.first().waitFor();
  // Five iterations of hygiene count the earlier lessons (else the counters would go unchecked).
  const counted = lessons.find((lesson) => lesson.counters !== undefined);
  expect(counted).toBeDefined();
  expect(await page.locator('[data-testid="lesson-counters"]').allTextContents()).toContain(`helpful ${counted!.counters!.helpful} · harmful ${counted!.counters!.harmful}`);
  const origin = withOrigin[0].provenance![0];
  const link = page.locator(`[data-testid="provenance-link"][title="${origin.trajectory_ids[0]}"]`).first();
  expect(await link.getAttribute('href')).toBe(`#/jobs/${encodeURIComponent(jobId)}/runs/${origin.run}/iterations/${origin.iteration}/trajectories/${encodeURIComponent(origin.trajectory_ids[0])}`);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-lesson-provenance.png'), fullPage: true });
  await link.click();
  // The trajectory the lesson was learned from, with its steps.
  await page.locator('[data-testid="trajectory-summary"]').waitFor();
  expect(await page.locator('[data-testid="trajectory-id"]').textContent()).toBe(origin.trajectory_ids[0]);
  expect(await page.locator('[data-testid="trajectory-summary"]').textContent()).toContain(`iteration ${origin.iteration}`);
  expect(await page.locator('[data-testid="trajectory-step"]').count()).toBeGreaterThan(0);
  expect(pageErrors).toEqual([]);
}, 180_000);

test('the policy registry: promote and rollback buttons only for those allowed, a refusal shown, a forced promotion with its reason, the versions with the active one', async () => {
  harness.model.setLatency(0);
  pageErrors.length = 0;
  const agent = 'registry-dash-agent';
  const flow = await api.client();
  // An unchanged policy (no_policy_update) cannot show a significant improvement: its promotion is refused.
  const { job_id: jobId } = await flow.startGrpo({
    agent_id: agent,
    task_set: 'simulated-small',
    config: { iterations: 2, batch_size: 1, group_size: 4, checkpoint_interval: 1, eval_interval: 1, seed: 3, control: 'no_policy_update' },
  });
  await waitFor(() => flow.getStatus(jobId), (status) => status.status === 'completed', 120_000, 250);
  const open = async (roles: string[], hash: string) => {
    await page.goto('about:blank'); // a fresh load, so the page takes the new token from the fragment
    await page.goto(`${api.url}/#token=${await api.token({ subject: roles[0], roles })}`);
    await page.waitForURL((url) => url.hash === '#/');
    await page.goto(`${api.url}/${hash}`);
  };

  // A viewer sees the registry link and no buttons.
  await open(['viewer'], `#/jobs/${jobId}`);
  await page.locator('[data-testid="checkpoint-row"]').first().waitFor();
  await page.locator('[data-testid="registry-link"]').waitFor();
  expect(await page.locator('[data-testid="promote"]').count()).toBe(0);
  await page.locator('[data-testid="registry-link"]').click();
  await page.locator('[data-testid="registry-empty"]').waitFor();

  // A trainer may promote: refused, with the reason; forcing is not offered.
  await open(['trainer'], `#/jobs/${jobId}`);
  await page.locator('[data-testid="promote"]').last().waitFor();
  await page.locator('[data-testid="promote"]').last().click();
  await page.locator('[data-testid="promote-error"]').waitFor();
  expect(await page.locator('[data-testid="promote-error"]').textContent()).toContain('Promotion refused');
  expect(await page.locator('[data-testid="force-open"]').count()).toBe(0);

  // An admin may force it with a reason, which the version records.
  await open(['admin'], `#/jobs/${jobId}`);
  await page.locator('[data-testid="promote"]').last().waitFor();
  await page.locator('[data-testid="promote"]').last().click();
  await page.locator('[data-testid="force-open"]').click();
  expect(await page.locator('[data-testid="force-promote"]').isDisabled()).toBe(true);
  await page.locator('[data-testid="force-reason"]').fill('dashboard test: forced on purpose');
  await page.locator('[data-testid="force-promote"]').click();
  expect(await page.locator('[data-testid="promote-message"]').textContent()).toBe(`v1 of ${agent} is active (force)`);
  await page.locator('[data-testid="registry-link"]', { hasText: 'v1 active' }).waitFor();
  // A second version (through the API), then a rollback to v1 from the registry page.
  await (await api.client({ roles: ['admin'] })).promotePolicy({ agent_id: agent, job_id: jobId, checkpoint: { run: 1, iteration: 1 }, force: true, reason: 'a second version' });
  await page.locator('[data-testid="registry-link"]').click();
  await page.locator('[data-testid="version-row"][data-version="2"] [data-testid="active"]').waitFor();
  expect(await page.locator('[data-testid="version-row"][data-version="1"]').textContent()).toContain('dashboard test: forced on purpose');
  expect(await page.locator('[data-testid="version-row"][data-version="2"] [data-testid="rollback"]').count()).toBe(0);
  await page.locator('[data-testid="version-row"][data-version="1"] [data-testid="rollback"]').click();
  await page.locator('[data-testid="version-row"][data-version="3"] [data-testid="active"]').waitFor();
  expect(await page.locator('[data-testid="version-row"][data-version="3"]').textContent()).toContain('content of v1');
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-registry.png'), fullPage: true });
  const versions = await flow.listPolicyVersions(agent);
  expect(versions.versions.map((v) => [v.version, v.kind, v.created_by, v.active])).toEqual([
    [3, 'rollback', 'admin', true],
    [2, 'force', 'alice', false],
    [1, 'force', 'admin', false],
  ]);

  // A viewer sees the versions, not the rollback buttons.
  await open(['viewer'], `#/agents/${agent}`);
  await page.locator('[data-testid="version-row"]').first().waitFor();
  expect(await page.locator('[data-testid="version-row"]').count()).toBe(3);
  expect(await page.locator('[data-testid="rollback"]').count()).toBe(0);
  expect(pageErrors).toEqual([]);
}, 240_000);

test('a banner says when the global kill switch is on, with its reason, and goes when it is off', async () => {
  await page.goto(`${api.url}/?refresh_ms=200#token=${await api.token()}`);
  await page.locator('[data-testid="start-form"]').waitFor();
  expect(await page.locator('[data-testid="kill-switch"]').count()).toBe(0);
  const admin = await api.client({ roles: ['admin'] });
  await withOwnKillSwitch(async () => {
    try {
      await admin.call('training.kill_switch', { on: true, reason: 'provider incident' });
      await page.locator('[data-testid="kill-switch"]').waitFor();
      expect(await page.locator('[data-testid="kill-switch"]').textContent()).toContain('Kill switch ON: provider incident');
    } finally {
      await admin.call('training.kill_switch', { on: false });
    }
  });
  await page.locator('[data-testid="kill-switch"]').waitFor({ state: 'detached' });
});

describe("the dashboard's read methods (same API, same token, same tenancy)", () => {
  let jobId: string;
  beforeAll(async () => {
    harness.model.setLatency(0);
    const flow = await api.client();
    ({ job_id: jobId } = await flow.startGrpo({ agent_id: 'reads-agent', task_set: 'simulated-small', config: { iterations: 2, batch_size: 1, group_size: 2, checkpoint_interval: 1, eval_interval: 2 } }));
    await waitFor(() => flow.getStatus(jobId), (status) => status.status === 'completed', 60_000, 200);
  }, 90_000);

  test('training.get_history: one entry per iteration with its metrics and the spend so far, plus budget and alerts', async () => {
    const flow = await api.client();
    const history = await flow.call('training.get_history', { job_id: jobId });
    const status = await flow.getStatus(jobId);
    expect(history).toMatchObject({ job_id: jobId, budget_usd: status.budget_usd, spend_usd: status.spend_usd, budget_alerts: [] });
    expect(history.iterations.map((entry) => [entry.run, entry.iteration])).toEqual([
      [1, 1],
      [1, 2],
    ]);
    expect(history.iterations[1].metrics).toEqual(status.last_metrics);
    // Spend is the running total: it never goes down and ends at the job's.
    expect(history.iterations[0].spend_usd).toBeLessThanOrEqual(history.iterations[1].spend_usd);
    expect(history.iterations[1].spend_usd).toBeLessThanOrEqual(status.spend_usd);
    // A stored row that is not well-formed metrics is shown as null, not an error.
    await api.h.repos.progress.recordIteration({ jobId, run: 9, iteration: 1, metrics: { mean_reward: 'high' }, policyVersion: 0, spendUsd: 0 });
    const withBadRow = await flow.call('training.get_history', { job_id: jobId });
    expect(withBadRow.iterations[2]).toMatchObject({ run: 9, iteration: 1, metrics: null });
  });

  test('training.list_checkpoints: each kept checkpoint with its verified policy; a damaged or missing blob is reported, not loaded, and is -32029 where a checkpoint is used', async () => {
    const flow = await api.client();
    const { checkpoints } = await flow.call('training.list_checkpoints', { job_id: jobId });
    expect(checkpoints.map((c) => [c.run, c.iteration])).toEqual([
      [1, 1],
      [1, 2],
    ]);
    for (const checkpoint of checkpoints) {
      expect(checkpoint.policy_error).toBeNull();
      expect(checkpoint.policy).toMatchObject({ base_prompt: expect.any(String), lessons: expect.any(Array), version: expect.any(Number) });
    }
    const row = (await api.h.repos.progress.checkpoints(jobId))[0];
    const blobs = blobStoreFromEnv();
    const original = await blobs.get(row.blobKey);
    await blobs.put(row.blobKey, Buffer.from(original.toString('utf8').replace('"policy"', '"policy" ')));
    const admin = await api.client({ subject: 'root', roles: ['admin'] });
    const checkpoint = { run: row.run, iteration: row.iteration };
    // Each use of the checkpoint says which one and why, without where the blob store is (a server path).
    const refusedEverywhere = async (what: string) => {
      const damaged = (await flow.call('training.list_checkpoints', { job_id: jobId })).checkpoints[0];
      expect(damaged.policy).toBeNull();
      expect(damaged.policy_error).toBe(`checkpoint run 1, iteration 1 of job ${jobId} failed its integrity check: ${what}; it was not loaded`);
      const uses = [
        flow.getPolicy(jobId, { checkpoint }),
        flow.getPolicy(jobId, { checkpoint, format: 'text' }),
        admin.promotePolicy({ agent_id: 'reads-agent', job_id: jobId, checkpoint, force: true, reason: 'a damaged checkpoint must not be promoted' }),
        flow.evaluate(jobId, checkpoint),
      ];
      for (const use of uses) {
        const error = await rpcError(use);
        expect({ code: error.code, data: error.data }).toEqual({ code: -32029, data: { reason: 'checkpoint_unreadable', run: 1, iteration: 1 } });
        expect(error.message).toBe(
          `Checkpoint unreadable: checkpoint run 1, iteration 1 of job ${jobId} failed its integrity check: ${what}; it was not loaded: choose another checkpoint (training.list_checkpoints shows which load) or restore its blob from a backup`,
        );
      }
      expect((await flow.listPolicyVersions('reads-agent')).versions).toEqual([]);
    };
    try {
      await refusedEverywhere('its stored payload does not match the sha256 its row records');
      await blobs.delete(row.blobKey);
      await refusedEverywhere('its stored payload is missing');
    } finally {
      await blobs.put(row.blobKey, original);
    }
    // Restored, it loads again.
    expect((await flow.getPolicy(jobId, { checkpoint })).checkpoint).toMatchObject(checkpoint);
  });

  test('another tenant sees no such job; a token without training:view is refused; an admin sees every tenant', async () => {
    const other = await api.client({ tenant: 'tenant-b' });
    for (const method of ['training.get_history', 'training.list_checkpoints'] as const) {
      expect((await rpcError(other.call(method, { job_id: jobId }))).code).toBe(-32020);
      const nobody = await api.client({ roles: ['nobody'] });
      expect((await rpcError(nobody.call(method, { job_id: jobId }))).code).toBe(-32010);
      expect((await rpcError((await api.client()).call(method, { job_id: '' }))).code).toBe(-32602);
    }
    const admin = await api.client({ tenant: 'ops', roles: ['admin'] });
    expect((await admin.call('training.get_history', { job_id: jobId })).job_id).toBe(jobId);
    expect((await rpcError((await api.client()).call('training.get_server_info', { extra: 1 } as never))).code).toBe(-32602);
  });

  test('training.get_server_info: the Web UI address from FLOW_TEMPORAL_UI_URL (no trailing slash), or null when unset', async () => {
    const flow = await api.client({ roles: ['viewer'] });
    expect(await flow.call('training.get_server_info', {})).toEqual({ temporal_ui_url: temporal.uiUrl, temporal_namespace: 'default' });
    const saved = process.env.FLOW_TEMPORAL_UI_URL;
    delete process.env.FLOW_TEMPORAL_UI_URL;
    try {
      expect(await flow.call('training.get_server_info', {})).toEqual({ temporal_ui_url: null, temporal_namespace: 'default' });
    } finally {
      process.env.FLOW_TEMPORAL_UI_URL = saved;
    }
  });
});

/** Opens what the Web UI shows of the workflow's search attributes (a JSON block) and returns them, parsed. */
async function findSearchAttributes(ui: Page, agent: string): Promise<Record<string, unknown>> {
  const body = () => ui.locator('body').innerText();
  await waitFor(body, (text) => text.includes('FlowAgentId') || text.toLowerCase().includes('search attributes'), 30_000, 250).catch(() => undefined);
  if (!(await body()).includes('FlowAgentId')) {
    const toggle = ui.getByText(/search attributes/i).first();
    if (await toggle.count()) await toggle.click();
  }
  const text = await waitFor(body, (value) => value.includes('"FlowAgentId"') && value.includes(agent), 30_000, 250);
  const start = text.lastIndexOf('{', text.indexOf('"FlowAgentId"'));
  return JSON.parse(text.slice(start, text.indexOf('\n}', start) + 2)) as Record<string, unknown>;
}
