/**
 * What a running agent does to stay on its active policy: GET /agents/{agent_id}/policy with the
 * ETag of the version it holds (If-None-Match). An unchanged policy is a 304 with no body, so an
 * agent can poll often; a promotion or rollback is a 200 with the new version and a new ETag.
 *
 *   FLOW_TOKEN=$(scripts/flow token --roles agent) npx tsx examples/fetch-policy.ts my-agent 3
 *
 * Prints one line per poll; exits 1 when the API refuses (no active version, another tenant's agent).
 */
interface ActivePolicy {
  agent_id: string;
  version: number;
  etag: string;
  system_prompt: string;
  policy: { base_prompt: string; lessons: { id: string; text: string; weight: number }[] };
}

/** An agent's copy of its active policy, revalidated with the ETag. */
class PolicyCache {
  private current: ActivePolicy | null = null;
  private etag: string | null = null;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly agentId: string,
  ) {}

  /** The active policy, and whether this poll changed it. */
  async poll(): Promise<{ policy: ActivePolicy; changed: boolean }> {
    const response = await fetch(`${this.url}/agents/${encodeURIComponent(this.agentId)}/policy`, {
      headers: { authorization: `Bearer ${this.token}`, ...(this.etag ? { 'if-none-match': this.etag } : {}) },
    });
    if (response.status === 304 && this.current) return { policy: this.current, changed: false };
    const body = (await response.json()) as ActivePolicy & { error?: { message: string } };
    if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
    this.current = body;
    this.etag = response.headers.get('etag');
    return { policy: body, changed: true };
  }
}

async function main(): Promise<number> {
  const [agentId, polls = '3', intervalMs = '200'] = process.argv.slice(2);
  const token = process.env.FLOW_TOKEN;
  if (!agentId || !token) {
    console.error('usage: FLOW_TOKEN=<a token with policy:read> npx tsx examples/fetch-policy.ts <agent_id> [polls] [interval ms]');
    return 2;
  }
  const cache = new PolicyCache(process.env.FLOW_API_URL ?? 'http://127.0.0.1:8080', token, agentId);
  for (let i = 0; i < Number(polls); i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, Number(intervalMs)));
    const { policy, changed } = await cache.poll();
    console.log(changed ? `v${policy.version} ${policy.etag}: ${policy.policy.lessons.length} lessons, system prompt of ${policy.system_prompt.length} characters` : `v${policy.version} not modified`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`error: ${error.message}`);
    process.exit(1);
  },
);
