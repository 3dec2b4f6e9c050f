// The training dashboard: a jobs list and a page per job, in preact + htm (no build step),
// charts by chart.js (the global `Chart`). Everything it shows or does goes through the
// JSON-RPC API with the token the user pasted (or passed as `#token=<jwt>`), kept in this tab's
// sessionStorage only.
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { rpc } from './rpc.js';
import { diffLessons, summarizeDiff } from './lessonDiff.js';
import { PromoteButton, RegistryPage, useRegistry } from './registry.js';

const TOKEN_KEY = 'flow.dashboard.token';
const search = new URLSearchParams(location.search);
/** How often live views poll the API; `?refresh_ms=` overrides (tests use a short one). */
const REFRESH_MS = Math.max(200, Number(search.get('refresh_ms')) || 2000);
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'budget_exceeded']);
const ALERT_MARKS = [0.75, 0.9];

// ---- formatting
const usd = (value) => `$${Number(value).toFixed(value !== 0 && Math.abs(value) < 1 ? 4 : 2)}`;
const pct = (value) => (value === null || value === undefined ? '–' : `${(value * 100).toFixed(0)}%`);

/** A real model's invalid outputs in the iteration (issue 13), by kind, when there were any. */
const invalidOutputs = (metrics) => {
  const counts = Object.entries(metrics.invalid_outputs ?? {}).filter(([, n]) => n > 0);
  return counts.length ? `, invalid outputs: ${counts.map(([kind, n]) => `${n} ${kind.replace(/_/g, ' ')}`).join(', ')}` : '';
};
const num = (value, digits = 3) => (typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '–');
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
const pValue = (p) => (typeof p !== 'number' ? '–' : p < 0.0001 ? '< 0.0001' : p.toFixed(4));

// ---- token and routing
/** A link's percent-encoded part, or null when it is not valid percent-encoding (a mangled link). */
const decodePart = (part) => {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
};

function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return;
  const token = decodePart(match[1]);
  if (token !== null) sessionStorage.setItem(TOKEN_KEY, token);
  // The token never stays in the address bar (or the history).
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
}

function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener('hashchange', changed);
    // The listener comes after the first render: a hash set in between would otherwise be missed.
    changed();
    return () => removeEventListener('hashchange', changed);
  }, []);
  const job = /^#\/jobs\/(.+)$/.exec(hash);
  const agent = /^#\/agents\/(.+)$/.exec(hash);
  const trajectory = /^#\/jobs\/([^/]+)\/runs\/(\d+)\/iterations\/(\d+)\/trajectories\/(.+)$/.exec(hash);
  // A mangled link (not valid percent-encoding) shows a message instead of a blank page.
  const badLink = { page: 'bad-link' };
  if (agent) {
    const agentId = decodePart(agent[1]);
    return agentId === null ? badLink : { page: 'agent', agentId };
  }
  if (trajectory) {
    const [, jobId, run, iteration, id] = trajectory.map(decodePart);
    return jobId === null || id === null ? badLink : { page: 'trajectory', jobId, run: Number(run), iteration: Number(iteration), trajectoryId: id };
  }
  if (!job) return { page: 'jobs' };
  const jobId = decodePart(job[1]);
  return jobId === null ? badLink : { page: 'job', jobId };
}

/** Calls `load` now and every REFRESH_MS while `live` holds; keeps the last good data on errors. */
function usePoll(load, deps, live = true) {
  const [state, setState] = useState({ data: null, error: null, loaded: false });
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      try {
        const data = await load();
        if (!stopped) setState({ data, error: null, loaded: true });
      } catch (error) {
        if (!stopped) setState((previous) => ({ data: previous.data, error, loaded: true }));
      }
      if (!stopped && live) timer = setTimeout(tick, REFRESH_MS);
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [...deps, live]);
  return state;
}

// ---- small pieces
function StatusBadge({ status }) {
  return html`<span class=${`badge status-${status}`} data-testid="status">${status}</span>`;
}

/** A horizontal bar; a budget bar (with alert marks) turns amber at 75% and red at 90%. */
function Bar({ ratio, marks = [], testid }) {
  const width = Math.max(0, Math.min(1, ratio)) * 100;
  const level = marks.length === 0 ? 'ok' : ratio >= 0.9 ? 'danger' : ratio >= 0.75 ? 'warn' : 'ok';
  return html`<div class="bar" data-testid=${testid} title=${pct(ratio)}>
    <div class=${`fill ${level}`} style=${`width:${width}%`}></div>
    ${marks.map((mark) => html`<div class="mark" style=${`left:${mark * 100}%`}></div>`)}
  </div>`;
}

function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" data-testid="error">${error.message}</p>`;
}

/** A chart.js line chart updated in place as its data changes. */
function LineChart({ testid, data, options }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    chart.current = new Chart(canvas.current, {
      type: 'line',
      data: { labels: [], datasets: [] },
      options: { animation: false, responsive: true, maintainAspectRatio: false, interaction: { mode: 'nearest', intersect: false }, ...options },
    });
    return () => chart.current.destroy();
  }, []);
  useEffect(() => {
    chart.current.data = data;
    chart.current.update('none');
  }, [data]);
  const points = data.datasets[0]?.data.length ?? 0;
  return html`<div class="chart" data-testid=${testid} data-points=${points}><canvas ref=${canvas}></canvas></div>`;
}

// ---- sign-in
function SignIn({ onToken, reason }) {
  const [value, setValue] = useState('');
  const submit = (event) => {
    event.preventDefault();
    if (value.trim()) onToken(value.trim());
  };
  return html`<main class="signin">
    <h1>Flow training dashboard</h1>
    ${reason ? html`<p class="error">${reason}</p>` : null}
    <p>Paste an API token (a JWT; <code>scripts/flow token</code> mints one, <code>npm start</code> prints one). It is kept in this tab only.</p>
    <form onSubmit=${submit}>
      <textarea name="token" rows="4" placeholder="eyJhbGciOi…" value=${value} onInput=${(e) => setValue(e.target.value)}></textarea>
      <button type="submit">Open the dashboard</button>
    </form>
  </main>`;
}

// ---- the jobs list
function StartJobForm({ token, taskSets }) {
  const [form, setForm] = useState({ agent_id: 'dashboard-agent', task_set: 'simulated-small', iterations: 8, group_size: 4, batch_size: 2, eval_interval: 4, budget_usd: 10, learning_rate: 0.5 });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const field = (name, type = 'number', step) => html`<label>${name.replaceAll('_', ' ')}
    <input name=${name} type=${type} step=${step} value=${form[name]} onInput=${(e) => setForm({ ...form, [name]: type === 'number' ? Number(e.target.value) : e.target.value })} />
  </label>`;
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { agent_id, task_set, ...config } = form;
      const started = await rpc(token, 'training.start_grpo', { agent_id, task_set, config: { ...config, checkpoint_interval: 1 } });
      location.hash = `#/jobs/${encodeURIComponent(started.job_id)}`;
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="start" data-testid="start-form" onSubmit=${submit}>
    <h2>Start a job</h2>
    ${field('agent_id', 'text')}
    <label>task set
      <select name="task_set" value=${form.task_set} onChange=${(e) => setForm({ ...form, task_set: e.target.value })}>
        ${taskSets.map((name) => html`<option value=${name}>${name}</option>`)}
      </select>
    </label>
    ${field('iterations')} ${field('group_size')} ${field('batch_size')} ${field('eval_interval')} ${field('budget_usd', 'number', '0.01')} ${field('learning_rate', 'number', '0.05')}
    <button type="submit" disabled=${busy} data-testid="start-job">${busy ? 'Starting…' : 'Start'}</button>
    <${ErrorLine} error=${error} />
  </form>`;
}

function JobsPage({ token, taskSets }) {
  const [status, setStatus] = useState('');
  const [agent, setAgent] = useState('');
  const jobs = usePoll(
    () => rpc(token, 'training.list_jobs', { limit: 100, ...(status ? { status } : {}), ...(agent ? { agent_id: agent } : {}) }),
    [token, status, agent],
  );
  return html`<main>
    <${StartJobForm} token=${token} taskSets=${taskSets} />
    <section>
      <h2>Jobs <span class="muted small">(live, every ${REFRESH_MS / 1000} s)</span></h2>
      <div class="filters">
        <label>status <select value=${status} onChange=${(e) => setStatus(e.target.value)}>
          <option value="">any</option>
          ${['queued', 'running', 'paused', 'completed', 'failed', 'cancelled', 'budget_exceeded'].map((s) => html`<option value=${s}>${s}</option>`)}
        </select></label>
        <label>agent <input value=${agent} placeholder="any" onChange=${(e) => setAgent(e.target.value.trim())} /></label>
      </div>
      <${ErrorLine} error=${jobs.error} />
      <table class="jobs" data-testid="jobs">
        <thead><tr><th>job</th><th>status</th><th>agent</th><th>priority</th><th>progress</th><th>spend / budget</th><th>created</th></tr></thead>
        <tbody>
          ${(jobs.data?.jobs ?? []).map(
            (job) => html`<tr data-testid="job-row" data-job-id=${job.job_id}>
              <td><a href=${`#/jobs/${encodeURIComponent(job.job_id)}`}>${job.job_id}</a></td>
              <td><${StatusBadge} status=${job.status} /></td>
              <td>${job.agent_id}</td>
              <td>${job.priority}</td>
              <td><${Bar} ratio=${job.iterations ? job.iteration / job.iterations : 0} /> <span class="small">${job.iteration}/${job.iterations}${job.run > 1 ? ` (run ${job.run})` : ''}</span></td>
              <td><${Bar} ratio=${job.budget_used_ratio} marks=${ALERT_MARKS} /> <span class="small">${usd(job.spend_usd)} / ${usd(job.budget_usd)}</span></td>
              <td class="small">${when(job.created_at)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${jobs.loaded && (jobs.data?.jobs ?? []).length === 0 ? html`<p class="muted">No jobs yet: start one above.</p>` : null}
    </section>
  </main>`;
}

// ---- one job
function temporalLink(info, jobId) {
  if (!info?.temporal_ui_url) return null;
  return `${info.temporal_ui_url}/namespaces/${encodeURIComponent(info.temporal_namespace)}/workflows/${encodeURIComponent(jobId)}`;
}

function CurvesChart({ history }) {
  const data = useMemo(() => {
    const rows = (history?.iterations ?? []).filter((row) => row.metrics);
    const runs = new Set(rows.map((row) => row.run)).size;
    return {
      labels: rows.map((row) => (runs > 1 ? `r${row.run}·${row.iteration}` : String(row.iteration))),
      datasets: [
        { label: 'mean reward', data: rows.map((row) => row.metrics.mean_reward), borderColor: '#2563eb', backgroundColor: '#2563eb', tension: 0.2 },
        { label: 'success rate', data: rows.map((row) => row.metrics.success_rate), borderColor: '#16a34a', backgroundColor: '#16a34a', tension: 0.2 },
      ],
    };
  }, [history]);
  return html`<${LineChart}
    testid="curves"
    data=${data}
    options=${{ scales: { y: { min: 0, max: 1, title: { display: true, text: 'per iteration' } }, x: { title: { display: true, text: 'iteration' } } } }}
  />`;
}

function SpendChart({ history, status }) {
  const data = useMemo(() => {
    const rows = history?.iterations ?? [];
    const start = Date.parse(status?.started_at ?? status?.created_at ?? rows[0]?.at ?? new Date().toISOString());
    const minutes = (iso) => Math.max(0, (Date.parse(iso) - start) / 60_000);
    const points = [{ x: 0, y: 0 }, ...rows.map((row) => ({ x: minutes(row.at), y: row.spend_usd }))];
    const end = Math.max(points[points.length - 1].x, 0.1);
    const budget = history?.budget_usd ?? status?.budget_usd ?? 0;
    const level = (fraction, color, label) => ({ label, data: [{ x: 0, y: budget * fraction }, { x: end, y: budget * fraction }], borderColor: color, borderDash: [6, 4], pointRadius: 0, borderWidth: 1 });
    return {
      datasets: [
        { label: 'spend (USD)', data: points, borderColor: '#7c3aed', backgroundColor: '#7c3aed', tension: 0 },
        level(0.75, '#d97706', '75% alert'),
        level(0.9, '#dc2626', '90% alert'),
        level(1, '#111827', 'budget'),
        {
          label: 'alerts raised',
          type: 'scatter',
          data: (history?.budget_alerts ?? []).map((alert) => ({ x: minutes(alert.at), y: alert.spend_usd })),
          borderColor: '#dc2626',
          backgroundColor: '#dc2626',
          pointRadius: 5,
        },
      ],
    };
  }, [history, status?.budget_usd, status?.started_at]);
  return html`<${LineChart}
    testid="spend"
    data=${data}
    options=${{ parsing: true, scales: { x: { type: 'linear', min: 0, title: { display: true, text: 'minutes since start' } }, y: { min: 0, title: { display: true, text: 'USD' } } } }}
  />`;
}

/** A metric as the evaluation reports it: an estimate {value, ci_low, ci_high, n} (or a bare number). */
const estimate = (metric) => (typeof metric === 'number' ? { value: metric, ci_low: null, ci_high: null } : metric && typeof metric.value === 'number' ? metric : null);
const withInterval = (metric) => {
  const e = estimate(metric);
  if (!e) return '–';
  if (e.ci_low === null || e.ci_high === null) return Number.isInteger(e.value) ? String(e.value) : num(e.value);
  return `${num(e.value)} [${num(e.ci_low)}, ${num(e.ci_high)}]`;
};

/** A run-level test (queries as the unit): mean difference, bootstrap interval, paired t. */
const queryTest = (test) =>
  test
    ? `${test.mean_difference >= 0 ? '+' : ''}${num(test.mean_difference)}${test.bootstrap ? ` [${num(test.bootstrap.ci_low)}, ${num(test.bootstrap.ci_high)}]` : ''} over ${test.queries} queries, paired t = ${num(test.t)}, df = ${num(test.df, 0)}`
    : '';

function Evaluation({ evaluation, testid = 'evaluation' }) {
  if (!evaluation) return html`<p class="muted" data-testid=${testid}>No held-out evaluation yet (every <code>eval_interval</code> iterations and after the last).</p>`;
  const current = evaluation.current ?? {};
  const baseline = evaluation.baseline ?? {};
  const keys = [...new Set([...Object.keys(current), ...Object.keys(baseline)])].filter((key) => estimate(current[key]) || estimate(baseline[key]));
  const welch = evaluation.welch ?? {};
  const significant = evaluation.significant_improvement ?? evaluation.significant;
  const success = evaluation.success_test;
  const split = evaluation.split === 'test' ? 'test' : 'validation';
  const badge = html`<span class=${`badge ${significant ? 'status-completed' : 'status-queued'}`} data-testid="significance">${significant ? 'significant improvement' : 'not significant'}</span>`;
  return html`<div data-testid=${testid}>
    ${success
      ? html`<p>
          Iteration ${evaluation.iteration} on ${evaluation.held_out_queries} ${split} queries × ${evaluation.samples_per_query}: task success${' '}
          <strong data-testid="success-p-value">p = ${success.p === null ? 'n/a' : pValue(success.p)}</strong> (${queryTest(success)}) ${badge}
        </p>
        <p class="small">
          The unit is the query: per query, trained minus baseline success over the same seeds; 95% interval by bootstrap over queries. Beside it, per episode
          (episodes of a query are not independent): Welch's <span data-testid="p-value">p = ${pValue(welch.p)}</span> on the reward (t = ${num(welch.t)}, df = ${num(welch.df, 1)}); reward per query: ${queryTest(evaluation.reward_test)}.
        </p>`
      : html`<p>
          Held-out evaluation of iteration ${evaluation.iteration}${evaluation.held_out_queries !== undefined ? ` on ${evaluation.held_out_queries} held-out queries × ${evaluation.samples_per_query}` : ''}:${' '}
          <strong data-testid="p-value">p = ${pValue(welch.p)}</strong> (Welch's t = ${num(welch.t)}, df = ${num(welch.df, 1)}${evaluation.alpha !== undefined ? `, α = ${evaluation.alpha}` : ''})
          ${badge}
        </p>`}
    ${(evaluation.warnings ?? []).map((warning) => html`<p class="error" data-testid="evaluation-warning">${warning}</p>`)}
    <table>
      <thead><tr><th>metric</th><th>untrained baseline [95% CI]</th><th>trained [95% CI]</th><th>change</th></tr></thead>
      <tbody>
        ${keys.map((key) => {
          const [b, c] = [estimate(baseline[key]), estimate(current[key])];
          return html`<tr><td>${key}</td><td>${withInterval(baseline[key])}</td><td>${withInterval(current[key])}</td><td>${b && c ? (Number.isInteger(c.value - b.value) ? String(c.value - b.value) : num(c.value - b.value)) : '–'}</td></tr>`;
        })}
      </tbody>
    </table>
    ${evaluation.families?.length
      ? html`<table data-testid="families">
          <thead><tr><th>family</th><th>queries</th><th>baseline success</th><th>trained success</th><th>change</th></tr></thead>
          <tbody>
            ${evaluation.families.map((f) => html`<tr><td>${f.family}</td><td>${f.queries}</td><td>${num(f.baseline_success_rate)}</td><td>${num(f.current_success_rate)}</td><td>${num(f.difference)}</td></tr>`)}
          </tbody>
        </table>`
      : ''}
  </div>`;
}

function LessonDiff({ from, to }) {
  if (!to) return html`<p class="muted">No checkpoint yet.</p>`;
  if (!to.policy) return html`<p class="error">${to.policy_error}</p>`;
  const rows = diffLessons(from?.policy?.lessons ?? [], to.policy.lessons);
  const counts = summarizeDiff(rows);
  const label = (c) => (c ? `run ${c.run}, iteration ${c.iteration}` : 'the initial policy');
  return html`<div data-testid="lesson-diff">
    <p class="small">From ${label(from)} to ${label(to)}: ${counts.added} added, ${counts.edited} edited, ${counts.reweighted} reweighted, ${counts.dropped} dropped, ${counts.unchanged} unchanged.</p>
    <ul class="lessons">
      ${rows.map(
        (row) => html`<li class=${`lesson ${row.kind}`} data-kind=${row.kind}>
          <span class="kind">${row.kind}</span>
          <span class="weight">${row.before && row.after && row.before.weight !== row.after.weight ? `${num(row.before.weight, 2)} → ${num(row.after.weight, 2)}` : num((row.after ?? row.before).weight, 2)}</span>
          ${row.kind === 'edited' ? html`<span class="text"><del>${row.before.text}</del> <ins>${row.after.text}</ins></span>` : html`<span class="text">${(row.after ?? row.before).text}</span>`}
          <${LessonOrigin} lesson=${row.after ?? row.before} />
        </li>`,
      )}
    </ul>
  </div>`;
}

const trajectoryHref = (jobId, run, iteration, id) =>
  `#/jobs/${encodeURIComponent(jobId)}/runs/${run}/iterations/${iteration}/trajectories/${encodeURIComponent(id)}`;

/** Where a lesson came from (links to the trajectories whose evidence produced it) and how it has done since. */
function LessonOrigin({ lesson }) {
  const origins = lesson.provenance ?? [];
  const counters = lesson.counters;
  if (!counters && origins.length === 0) return null;
  return html`<div class="small lesson-origin" data-testid="lesson-provenance">
    ${counters
      ? html`<span data-testid="lesson-counters" title="later trajectories that followed the lesson: how many succeeded (helpful) and failed (harmful)"
          >helpful ${counters.helpful} · harmful ${counters.harmful}</span
        >`
      : null}
    ${origins.map(
      (origin) => html`<span class="origin" data-testid="lesson-origin"
        >${origin.operation}${origin.merged_lesson_id ? ` of ${origin.merged_lesson_id}` : ''} in run ${origin.run}, iteration ${origin.iteration}${origin.trajectory_ids.length > 0 ? ', from ' : ''}${origin.trajectory_ids.map(
          (id, i) => html`${i > 0 ? ', ' : ''}<a data-testid="provenance-link" href=${trajectoryHref(origin.job_id, origin.run, origin.iteration, id)} title=${id}>${id.slice(0, 8)}</a>`,
        )}</span
      >`,
    )}
  </div>`;
}

/** One stored trajectory, as a lesson's provenance links to it. */
function TrajectoryPage({ token, jobId, run, iteration, trajectoryId }) {
  const [state, setState] = useState({ trajectory: null, error: null, loaded: false });
  useEffect(() => {
    let stopped = false;
    rpc(token, 'training.export_trajectories', { job_id: jobId, run, iteration_from: iteration, iteration_to: iteration, limit: 1000 })
      .then((page) => !stopped && setState({ trajectory: (page.trajectories ?? []).find((t) => t.id === trajectoryId) ?? null, error: null, loaded: true }))
      .catch((error) => !stopped && setState({ trajectory: null, error, loaded: true }));
    return () => {
      stopped = true;
    };
  }, [token, jobId, run, iteration, trajectoryId]);
  const t = state.trajectory;
  return html`<main data-testid="trajectory-page">
    <p><a href=${`#/jobs/${encodeURIComponent(jobId)}`}>← job ${jobId}</a></p>
    <h2>Trajectory <span data-testid="trajectory-id">${trajectoryId}</span></h2>
    <${ErrorLine} error=${state.error} />
    ${!state.loaded
      ? html`<p class="muted">Loading…</p>`
      : !t
        ? state.error ? null : html`<p class="error">No trajectory ${trajectoryId} in run ${run}, iteration ${iteration} of this job.</p>`
        : html`<p data-testid="trajectory-summary">
              Run ${t.run}, iteration ${t.iteration}, query ${t.query_index}, sample ${t.sample_index}:
              <strong>${t.success ? 'succeeded' : 'failed'}</strong>, reward ${num(t.reward)}, advantage ${num(t.advantage)}
            </p>
            <ol class="steps">
              ${t.steps.map(
                (step) => html`<li data-testid="trajectory-step">
                  ${step.action.type === 'tool_call'
                    ? html`<code>${step.tool_calls.map((call) => `${call.name}(${JSON.stringify(call.arguments)})`).join(', ')}</code> → <span>${step.error ?? step.result}</span>`
                    : html`answer: <span>${step.action.content}</span>`}
                </li>`,
              )}
            </ol>`}
  </main>`;
}

function Checkpoints({ token, jobId, checkpoints, status, onResumed, registry, onPromoted }) {
  const list = checkpoints ?? [];
  const [pick, setPick] = useState(null);
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const toIndex = pick ?? list.length - 1;
  const to = list[toIndex];
  const from = toIndex > 0 ? list[toIndex - 1] : null;
  const finished = TERMINAL.has(status?.status);
  const resume = async (checkpoint) => {
    setError(null);
    try {
      const result = await rpc(token, 'training.resume', { job_id: jobId, checkpoint: { run: checkpoint.run, iteration: checkpoint.iteration } });
      setMessage(`run ${result.run} started from run ${result.from.run}, iteration ${result.from.iteration}`);
      onResumed();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<div>
    <table data-testid="checkpoints">
      <thead><tr><th>run</th><th>iteration</th><th>score</th><th>lessons</th><th>saved</th><th></th><th></th><th></th></tr></thead>
      <tbody>
        ${list.map(
          (checkpoint, index) => html`<tr data-testid="checkpoint-row" class=${index === toIndex ? 'selected' : ''}>
            <td>${checkpoint.run}</td><td>${checkpoint.iteration}</td><td>${num(checkpoint.score)}</td>
            <td>${checkpoint.policy ? checkpoint.policy.lessons.length : html`<span class="error">${checkpoint.policy_error}</span>`}</td>
            <td class="small">${when(checkpoint.created_at)}</td>
            <td><button class="link" onClick=${() => setPick(index)}>show changes</button></td>
            <td><button data-testid="resume" disabled=${!finished} title=${finished ? 'start a new run from this checkpoint' : 'a job can be resumed once it has ended'} onClick=${() => resume(checkpoint)}>Resume from here</button></td>
            <td><${PromoteButton} token=${token} agentId=${status?.agent_id} jobId=${jobId} checkpoint=${checkpoint} registry=${registry} onPromoted=${onPromoted} /></td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${message ? html`<p class="ok" data-testid="resume-message">${message}</p>` : null}
    <${ErrorLine} error=${error} />
    <h3>Lesson library</h3>
    <${LessonDiff} from=${from} to=${to} />
  </div>`;
}

function JobPage({ token, jobId, serverInfo }) {
  const [nonce, setNonce] = useState(0);
  const status = usePoll(() => rpc(token, 'training.get_status', { job_id: jobId }), [token, jobId, nonce]);
  const finished = TERMINAL.has(status.data?.status);
  const live = !finished;
  const history = usePoll(() => rpc(token, 'training.get_history', { job_id: jobId }), [token, jobId, nonce, status.data?.iteration, status.data?.status], live);
  const checkpoints = usePoll(() => rpc(token, 'training.list_checkpoints', { job_id: jobId }), [token, jobId, nonce, status.data?.iteration, status.data?.status], false);
  const [confirming, setConfirming] = useState(false);
  const [cancelError, setCancelError] = useState(null);
  const [promoted, setPromoted] = useState(null);
  const registry = useRegistry(token, status.data?.agent_id ?? '', promoted?.version ?? 0);
  const cancel = async () => {
    setCancelError(null);
    try {
      await rpc(token, 'training.cancel', { job_id: jobId, reason: 'cancelled from the dashboard' });
      setConfirming(false);
    } catch (failure) {
      setCancelError(failure);
    }
  };
  const job = status.data;
  const link = temporalLink(serverInfo, jobId);
  if (!job) return html`<main><p><a href="#/">← all jobs</a></p><${ErrorLine} error=${status.error} />${status.error ? null : html`<p class="muted">Loading…</p>`}</main>`;
  return html`<main data-testid="job-page">
    <p><a href="#/">← all jobs</a></p>
    <h2 class="job-title"><span data-testid="job-id">${job.job_id}</span> <${StatusBadge} status=${job.status} /></h2>
    <${ErrorLine} error=${status.error} />
    <dl class="facts">
      <dt>agent</dt><dd>${job.agent_id} <a class="small" data-testid="registry-link" href=${`#/agents/${encodeURIComponent(job.agent_id)}`}>policy registry${registry.data?.active_version ? ` (v${registry.data.active_version} active)` : ''}</a></dd>
      <dt>priority</dt><dd>${job.priority}</dd>
      <dt>progress</dt><dd data-testid="progress">iteration ${job.iteration} of ${job.iterations}${job.run > 1 ? `, run ${job.run}` : ''}${job.phase && !finished ? ` (${job.phase})` : ''}</dd>
      <dt>spend</dt><dd><${Bar} ratio=${job.budget_used_ratio} marks=${ALERT_MARKS} testid="budget-bar" /> ${usd(job.spend_usd)} of ${usd(job.budget_usd)}</dd>
      <dt>last metrics</dt><dd>${job.last_metrics ? `reward ${num(job.last_metrics.mean_reward)}, success ${pct(job.last_metrics.success_rate)}, ${job.last_metrics.trajectories} trajectories${invalidOutputs(job.last_metrics)}` : '–'}</dd>
      ${job.reason ? html`<dt>reason</dt><dd>${job.reason}</dd>` : null}
    </dl>
    <div class="actions">
      ${link ? html`<a class="button" data-testid="temporal-link" href=${link} target="_blank" rel="noopener">Open in the Temporal Web UI</a>` : html`<span class="muted small">Set FLOW_TEMPORAL_UI_URL for a link to the Temporal Web UI.</span>`}
      ${!finished
        ? confirming
          ? html`<button class="danger" data-testid="confirm-cancel" onClick=${cancel}>Really cancel</button> <button onClick=${() => setConfirming(false)}>Keep running</button>`
          : html`<button data-testid="cancel" onClick=${() => setConfirming(true)}>Cancel job…</button>`
        : null}
      <${ErrorLine} error=${cancelError} />
    </div>
    <section class="grid">
      <div class="panel"><h3>Reward and success rate</h3><${CurvesChart} history=${history.data} /></div>
      <div class="panel"><h3>Spend over time</h3><${SpendChart} history=${history.data} status=${job} /></div>
    </section>
    <section class="panel"><h3>Held-out evaluation (validation)</h3><${Evaluation} evaluation=${job.evaluation} /></section>
    ${job.test_evaluation ? html`<section class="panel" data-testid="test-evaluation"><h3>Test split (reports only)</h3><${Evaluation} evaluation=${job.test_evaluation} testid="test-evaluation-result" /></section>` : ''}
    <section class="panel"><h3>Checkpoints</h3>
      <${ErrorLine} error=${checkpoints.error} />
      ${promoted ? html`<p class="ok" data-testid="promote-message">v${promoted.version} of ${promoted.agent_id} is active (${promoted.kind})</p>` : null}
      <${Checkpoints} token=${token} jobId=${jobId} checkpoints=${checkpoints.data?.checkpoints} status=${job} onResumed=${() => setNonce(nonce + 1)} registry=${registry.data} onPromoted=${setPromoted} />
    </section>
  </main>`;
}

/** A banner while the global kill switch is on: every running job pauses, new ones start paused. */
function KillSwitchBanner({ token }) {
  const state = usePoll(() => rpc(token, 'training.get_kill_switch'), [token]);
  if (!state.data?.on) return null;
  return html`<div class="banner" data-testid="kill-switch">
    Kill switch ON${state.data.reason ? `: ${state.data.reason}` : ''} — running jobs pause at their next batch and new jobs start paused
    <span class="small">(set by ${state.data.by ?? 'unknown'}, ${when(state.data.at)})</span>
  </div>`;
}

// ---- the app
function App() {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY));
  const [signInReason, setSignInReason] = useState(null);
  const [serverInfo, setServerInfo] = useState(null);
  const [taskSets, setTaskSets] = useState(['simulated-small', 'simulated']);
  const route = useRoute();

  const signIn = (value) => {
    sessionStorage.setItem(TOKEN_KEY, value);
    setSignInReason(null);
    setToken(value);
  };
  const signOut = (reason = null) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setSignInReason(reason);
    setToken(null);
  };

  useEffect(() => {
    if (!token) return;
    rpc(token, 'training.get_server_info')
      .then(setServerInfo)
      .catch((error) => (error.isAuthError ? signOut(`The server refused the token: ${error.message}`) : undefined));
    // The task sets the server knows, from its own OpenRPC description of start_grpo.
    rpc(token, 'rpc.discover')
      .then((document) => {
        const start = document.methods.find((method) => method.name === 'training.start_grpo');
        const names = start?.params.find((param) => param.name === 'task_set')?.schema?.enum;
        if (Array.isArray(names) && names.length) setTaskSets(names);
      })
      .catch(() => undefined);
  }, [token]);

  if (!token) return html`<${SignIn} onToken=${signIn} reason=${signInReason} />`;
  return html`<div>
    <header>
      <a class="brand" href="#/">Flow</a> <span class="muted">training dashboard</span>
      <button class="link right" onClick=${() => signOut()}>sign out</button>
    </header>
    <${KillSwitchBanner} token=${token} />
    ${route.page === 'trajectory'
      ? html`<${TrajectoryPage} token=${token} jobId=${route.jobId} run=${route.run} iteration=${route.iteration} trajectoryId=${route.trajectoryId} />`
      : route.page === 'job'
      ? html`<${JobPage} token=${token} jobId=${route.jobId} serverInfo=${serverInfo} />`
      : route.page === 'agent'
        ? html`<${RegistryPage} token=${token} agentId=${route.agentId} />`
        : route.page === 'bad-link'
          ? html`<p class="error" data-testid="bad-link">This link is not valid (its address is not correctly percent-encoded). <a href="#/">All jobs</a></p>`
          : html`<${JobsPage} token=${token} taskSets=${taskSets} />`}
  </div>`;
}

takeTokenFromFragment();
const root = document.getElementById('app');
root.textContent = ''; // the static "Loading…" line is not preact's to diff against
render(html`<${App} />`, root);
