// The policy registry in the dashboard (issue 16): an agent's versions (which is active, who made
// each, when, why, on what evaluation) at #/agents/<agent_id>, and the promote and rollback
// buttons, shown only to callers the API says may use them (list_policy_versions' can_promote
// and can_force). Everything goes through POST /rpc like the rest of the page.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { rpc } from './rpc.js';

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
const pValue = (p) => (typeof p !== 'number' ? 'n/a' : p < 0.0001 ? '< 0.0001' : p.toFixed(4));

/** An agent's registry, reloaded on `nonce`; null while the first load runs. */
export function useRegistry(token, agentId, nonce = 0) {
  const [state, setState] = useState({ data: null, error: null });
  useEffect(() => {
    if (!agentId) return undefined; // the job's agent is not known yet
    let stopped = false;
    rpc(token, 'agents.list_policy_versions', { agent_id: agentId }).then(
      (data) => !stopped && setState({ data, error: null }),
      (error) => !stopped && setState((previous) => ({ data: previous.data, error })),
    );
    return () => {
      stopped = true;
    };
  }, [token, agentId, nonce]);
  return state;
}

function evidence(version) {
  const e = version.evaluation;
  if (!e) return version.kind === 'rollback' ? `content of v${version.rollback_of}` : 'no evaluation';
  const test = e.success_test;
  const verdict = e.significant_improvement ? 'significant' : 'not significant';
  return `${verdict}: success ${(e.current.success_rate.value * 100).toFixed(0)}% vs ${(e.baseline.success_rate.value * 100).toFixed(0)}%, p = ${pValue(test ? test.p : e.welch.p)} (${e.held_out_queries} test queries)`;
}

/** Promote a job's checkpoint to the agent's active version; a forced promotion asks for a reason. */
export function PromoteButton({ token, agentId, jobId, checkpoint, registry, onPromoted }) {
  const [error, setError] = useState(null);
  const [forcing, setForcing] = useState(false);
  const [reason, setReason] = useState('');
  if (!registry?.can_promote) return null;
  const promote = async (force) => {
    setError(null);
    try {
      const version = await rpc(token, 'agents.promote_policy', {
        agent_id: agentId,
        job_id: jobId,
        checkpoint: { run: checkpoint.run, iteration: checkpoint.iteration },
        ...(force ? { force: true, reason } : {}),
      });
      setForcing(false);
      onPromoted(version);
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<span class="promote">
    <button data-testid="promote" title="make this checkpoint the agent's active policy, if its test-split evaluation shows a significant improvement" onClick=${() => promote(false)}>Promote</button>
    ${registry.can_force && error?.code === -32027 && !forcing ? html` <button data-testid="force-open" onClick=${() => setForcing(true)}>Force…</button>` : null}
    ${forcing
      ? html` <input data-testid="force-reason" placeholder="why (recorded)" value=${reason} onInput=${(e) => setReason(e.target.value)} />
          <button class="danger" data-testid="force-promote" disabled=${!reason.trim()} onClick=${() => promote(true)}>Force promote</button>`
      : null}
    ${error ? html`<span class="error small" data-testid="promote-error">${error.message}</span>` : null}
  </span>`;
}

/** #/agents/<agent_id>: the versions, newest first, and the rollback buttons. */
export function RegistryPage({ token, agentId }) {
  const [nonce, setNonce] = useState(0);
  const [error, setError] = useState(null);
  // Older pages, loaded on demand (an agent may have thousands of versions, each with its policy).
  const [older, setOlder] = useState({ versions: [], cursor: undefined });
  const nonceRef = useRef(nonce);
  nonceRef.current = nonce;
  const registry = useRegistry(token, agentId, nonce);
  useEffect(() => setOlder({ versions: [], cursor: undefined }), [token, agentId, nonce]);
  const loadOlder = async () => {
    setError(null);
    const loadedFor = nonce;
    try {
      const page = await rpc(token, 'agents.list_policy_versions', { agent_id: agentId, cursor: older.cursor ?? registry.data.next_cursor });
      // A rollback meanwhile reloaded the first page: this page belongs to the list before it.
      if (loadedFor !== nonceRef.current) return;
      setOlder({ versions: [...older.versions, ...page.versions], cursor: page.next_cursor });
    } catch (failure) {
      setError(failure);
    }
  };
  const rollback = async (version) => {
    setError(null);
    try {
      await rpc(token, 'agents.rollback', { agent_id: agentId, to_version: version.version, reason: 'rolled back from the dashboard' });
      setNonce(nonce + 1);
    } catch (failure) {
      setError(failure);
    }
  };
  const data = registry.data;
  const versions = data ? [...data.versions, ...older.versions] : [];
  const moreCursor = older.cursor === undefined ? data?.next_cursor : older.cursor;
  return html`<main data-testid="registry-page">
    <p><a href="#/">← all jobs</a></p>
    <h2>Policy registry: <span data-testid="registry-agent">${agentId}</span></h2>
    ${registry.error ? html`<p class="error">${registry.error.message}</p>` : null}
    ${error ? html`<p class="error" data-testid="rollback-error">${error.message}</p>` : null}
    ${data && data.versions.length === 0 ? html`<p class="muted" data-testid="registry-empty">No version yet: promote a checkpoint from a job's page.</p>` : null}
    ${data && data.versions.length
      ? html`<p class="small">Agents read the active version at <code>GET /agents/${encodeURIComponent(agentId)}/policy</code> (ETag ${data.versions[0].etag}).</p>
          <table data-testid="versions">
            <thead><tr><th>version</th><th></th><th>kind</th><th>from</th><th>evidence</th><th>why</th><th>by</th><th>when</th><th></th></tr></thead>
            <tbody>
              ${versions.map(
                (v) => html`<tr data-testid="version-row" data-version=${v.version} class=${v.active ? 'selected' : ''}>
                  <td>v${v.version}</td>
                  <td>${v.active ? html`<span class="badge status-completed" data-testid="active">active</span>` : null}</td>
                  <td>${v.kind}</td>
                  <td class="small"><a href=${`#/jobs/${encodeURIComponent(v.source.job_id)}`}>${v.source.job_id}</a> run ${v.source.run}, iteration ${v.source.iteration}</td>
                  <td class="small">${evidence(v)}${v.refusal ? html`<br /><span class="error">forced past: ${v.refusal}</span>` : null}</td>
                  <td class="small">${v.reason ?? '–'}</td>
                  <td class="small">${v.created_by}</td>
                  <td class="small">${when(v.created_at)}</td>
                  <td>${data.can_promote && !v.active ? html`<button data-testid="rollback" onClick=${() => rollback(v)}>Roll back to v${v.version}</button>` : null}</td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${moreCursor ? html`<p><button data-testid="older-versions" onClick=${loadOlder}>Older versions</button></p>` : null}`
      : null}
  </main>`;
}
