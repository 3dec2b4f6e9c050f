/**
 * The deployment artifacts, checked offline through scripts/validate-deploy.sh: the Dockerfile
 * with hadolint, docker-compose.yml against the compose specification's JSON schema (dclint),
 * the Helm chart through `helm lint` and `helm template` for every values file, and the rendered manifests against the Kubernetes
 * schemas kubernetes-validate ships (plus deploy/schemas/ for KEDA's ScaledObject). Deliberately
 * broken files must fail each check, so none of them passes by checking nothing.
 *
 * The tools are installed by scripts/install-deploy-tools.sh (run by `npm run validate:deploy` and `npm test`, so CI).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { TRAINING_TASK_QUEUE, trajectoryTaskQueue } from '../../workflows/taskQueues';
import { POOL_ENV } from '../../workers/pools';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'deploy');
const RENDERED = path.join(ROOT, '.flow', 'deploy', 'rendered');
const POOLS = ['workflow', 'trajectory', 'cpu'] as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = Record<string, any>;

function validateDeploy(...args: string[]) {
  const run = spawnSync('bash', [path.join(ROOT, 'scripts', 'validate-deploy.sh'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

function expectPass(run: { status: number | null; output: string }) {
  if (run.status !== 0) throw new Error(`scripts/validate-deploy.sh failed (exit ${run.status}):\n${run.output}`);
}

function rendered(variant: string): Manifest[] {
  const text = readFileSync(path.join(RENDERED, `${variant}.yaml`), 'utf8');
  return parseAllDocuments(text)
    .map((document) => document.toJS() as Manifest | null)
    .filter((manifest): manifest is Manifest => manifest !== null);
}

function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} named ${name} among ${manifests.map((m) => `${m.kind}/${m.metadata?.name}`).join(', ')}`);
  return found;
}

function envOf(container: Manifest): Record<string, string> {
  return Object.fromEntries((container.env ?? []).map((e: { name: string; value: string }) => [e.name, e.value]));
}

beforeAll(() => {
  const missing = ['.flow/tools/go/bin/helm', '.flow/tools/deploy-venv/bin/python'].filter((tool) => !existsSync(path.join(ROOT, tool)));
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: run scripts/install-deploy-tools.sh (npm run validate:deploy and npm test do)`);
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');

  test('passes hadolint', () => {
    const run = validateDeploy('docker');
    expectPass(run);
    expect(run.output).toContain('docker: ok');
  });

  test('a Dockerfile that runs as root with a shell-form command fails hadolint, with the rules', () => {
    const run = validateDeploy('docker', path.join(FIXTURES, 'broken.Dockerfile'));
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('DL3002 warning: Last USER should not be root');
    expect(run.output).toContain('DL3025 warning: Use arguments JSON notation for CMD and ENTRYPOINT arguments');
  });

  test('one multi-stage image on node:20-bookworm-slim, running as a non-root user, the API by default', () => {
    expect(dockerfile).toContain('ARG NODE_IMAGE=node:20-bookworm-slim');
    const stages = [...dockerfile.matchAll(/^FROM (\S+) AS (\S+)$/gm)].map(([, image, name]) => `${name}:${image}`);
    expect(stages).toEqual(['deps:${NODE_IMAGE}', 'build:${NODE_IMAGE}', 'runtime:${NODE_IMAGE}']);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev /m);
    expect(dockerfile).toContain('npx prisma generate');
    const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map(([, user]) => user);
    expect(users).toEqual(['1000:1000']);
    expect(dockerfile).toMatch(/^CMD \["node", "--import", "tsx", "api\/main\.ts"\]$/m);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Manifest;
  const services = compose.services as Record<string, Manifest>;

  test('every Flow process sets the HTTP agent allow-list explicitly (empty: public addresses only)', () => {
    const flow = Object.entries(services).filter(([, service]) => (service.environment as Record<string, unknown> | undefined)?.FLOW_TASK_QUEUE !== undefined);
    expect(flow.map(([name]) => name)).toEqual(expect.arrayContaining(['api']));
    for (const [, service] of flow) expect(service.environment).toHaveProperty('FLOW_HTTP_AGENT_ALLOW', expect.stringContaining('FLOW_HTTP_AGENT_ALLOW'));
    const values = parse(readFileSync(path.join(ROOT, 'helm', 'flow', 'values.yaml'), 'utf8')) as Manifest;
    expect(values.config).toHaveProperty('FLOW_HTTP_AGENT_ALLOW', '');
  });

  test('is valid against the compose specification and passes lint and promtool', () => {
    const run = validateDeploy('compose');
    expectPass(run);
    expect(run.output).toContain('compose: ok');
  });

  test('a file that breaks the compose specification fails, naming the service', () => {
    const run = validateDeploy('compose', path.join(FIXTURES, 'broken-compose.yml'));
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('invalid-schema');
    expect(run.output).toContain('instancePath="/services/api"');
  });

  test('brings up PostgreSQL, Temporal with its Web UI, the migrations, the API, one service per worker pool, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'grafana', 'migrate', 'postgres', 'prometheus', 'temporal', 'temporal-namespace', 'temporal-schema', 'temporal-setup', 'temporal-ui', 'worker-cpu', 'worker-trajectory', 'worker-workflow'].sort(),
    );
    for (const pool of POOLS) {
      const worker = services[`worker-${pool}`];
      expect(worker.environment.FLOW_WORKER_POOL).toBe(pool);
      expect(worker.environment.FLOW_WORKER_HEALTH_PORT).toBe('8081');
      // In-flight work is handed back before compose's stop_grace_period (2m) ends in a kill.
      expect([worker.stop_grace_period, worker.environment.FLOW_WORKER_SHUTDOWN_GRACE_S]).toEqual(['2m', '110']);
      expect(worker.command).toEqual(['node', '--import', 'tsx', 'workers/main.ts']);
      expect(worker.environment.DATABASE_URL).toMatch(/^postgresql:\/\/flow:.*@postgres:5432\/flow$/);
      expect(worker.environment.TEMPORAL_ADDRESS).toBe('temporal:7233');
      expect(worker.environment.FLOW_METRICS_PORT).toBe('9464');
      expect(worker.environment.FLOW_TEMPORAL_METRICS_PORT).toBe('9465');
      const concurrency = Object.entries(POOL_ENV).filter(([, [forPool]]) => forPool === pool).map(([name]) => name);
      expect(concurrency.filter((name) => name in worker.environment)).not.toEqual([]);
    }
    expect(services.api.command).toEqual(['node', '--import', 'tsx', 'api/main.ts']);
    expect(services.migrate.command).toEqual(['npx', '--no-install', 'prisma', 'migrate', 'deploy']);
    // Search attributes: registered from the Flow image (tests/integration/deploySearchAttributes.test.ts runs the script).
    expect(services['temporal-setup'].command).toEqual(['node', '--import', 'tsx', 'deploy/registerSearchAttributes.ts']);
    expect(services['temporal-setup'].image).toBe(services.api.image);
  });

  test('every long-running service has a healthcheck and restarts unless stopped; one-shot jobs retry on failure', () => {
    const oneShot = ['migrate', 'temporal-schema', 'temporal-namespace', 'temporal-setup'];
    for (const [name, service] of Object.entries(services)) {
      if (oneShot.includes(name)) {
        expect({ name, restart: service.restart }).toEqual({ name, restart: 'on-failure' });
        continue;
      }
      expect({ name, restart: service.restart }).toEqual({ name, restart: 'unless-stopped' });
      expect({ name, healthcheck: Array.isArray(service.healthcheck?.test) }).toEqual({ name, healthcheck: true });
    }
  });

  test('the API and the workers start only after the migrations and the search attributes are in place', () => {
    for (const name of ['api', ...POOLS.map((pool) => `worker-${pool}`)]) {
      expect(services[name].depends_on).toEqual({
        migrate: { condition: 'service_completed_successfully' },
        'temporal-setup': { condition: 'service_completed_successfully' },
      });
    }
  });

  test('Prometheus scrapes the API, every pool (OpenTelemetry on 9464, Temporal SDK on 9465) and the Temporal server', () => {
    const mounted = services.prometheus.volumes.find((v: string) => v.startsWith('./deploy/prometheus/prometheus.yml:'));
    expect(mounted).toBeDefined();
    const config = parse(readFileSync(path.join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as Manifest;
    const targets = (job: string): string[] => {
      const scrape = config.scrape_configs.find((c: Manifest) => c.job_name === job);
      return [
        ...(scrape.static_configs ?? []).flatMap((c: Manifest) => c.targets),
        ...(scrape.dns_sd_configs ?? []).flatMap((c: Manifest) => c.names.map((n: string) => `${n}:${c.port}`)),
      ];
    };
    expect(targets('flow-api')).toEqual(['api:9464']);
    expect(targets('flow-workers').sort()).toEqual(POOLS.map((pool) => `worker-${pool}:9464`).sort());
    expect(targets('temporal-sdk').sort()).toEqual(POOLS.map((pool) => `worker-${pool}:9465`).sort());
    expect(targets('temporal-server')).toEqual(['temporal:8000']);
  });

  test("Grafana is provisioned with the Prometheus datasource and loads the repository's dashboards folder", () => {
    const volumes: string[] = services.grafana.volumes;
    expect(volumes).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    const dashboardsMount = volumes.find((v) => v.startsWith('./deploy/grafana/dashboards:'));
    expect(dashboardsMount).toBeDefined();
    const provider = parse(readFileSync(path.join(ROOT, 'deploy/grafana/provisioning/dashboards/flow.yaml'), 'utf8')) as Manifest;
    // The provider reads the folder that docker-compose mounts, where flow-training.json lives.
    expect(dashboardsMount!.split(':')[1]).toBe(provider.providers[0].options.path);
    const datasource = parse(readFileSync(path.join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as Manifest;
    expect(datasource.datasources[0]).toMatchObject({ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090' });
    const dashboard = path.join(ROOT, 'deploy/grafana/dashboards/flow-training.json');
    if (existsSync(dashboard)) expect(JSON.parse(readFileSync(dashboard, 'utf8'))).toHaveProperty('panels');
  });
});

describe('helm/flow', () => {
  // Lints and renders every variant once; the tests below read what it rendered.
  let helmRun: { status: number | null; output: string };
  beforeAll(() => {
    helmRun = validateDeploy('helm');
  });

  test('passes helm lint --strict and renders for the default, small and large values', () => {
    expectPass(helmRun);
    for (const variant of ['default', 'small', 'large', 'options', 'no-migrations']) expect(helmRun.output).toContain(`values '${variant}'`);
  });

  test('the rendered manifests are valid against the Kubernetes schemas (1.25 and 1.37) and the KEDA schema', () => {
    expectPass(helmRun);
    const run = validateDeploy('k8s');
    expectPass(run);
    expect(run.output).toMatch(/(\d+) of \1 resources valid \(kubernetes 1\.25\.0, kubernetes 1\.37\.0\)/);
    expect(run.output).toContain('ok   .flow/deploy/rendered/large.yaml ScaledObject/flow-worker-trajectory');
  });

  test('the broken Deployment fails the Kubernetes-schema check, with the field and the reason', () => {
    const run = validateDeploy('k8s', path.join(FIXTURES, 'broken-deployment.yaml'));
    expect(run.status).toBe(1);
    expect(run.output).toContain("Deployment/flow-worker-broken: kubernetes 1.25.0: spec.replicas: 'two' is not of type 'integer'");
    expect(run.output).toContain('0 of 1 resources valid');
  });

  test('a broken KEDA ScaledObject fails its schema: the temporal trigger needs a task queue, metadata values are strings', () => {
    const run = validateDeploy('k8s', path.join(FIXTURES, 'broken-scaledobject.yaml'));
    expect(run.status).toBe(1);
    expect(run.output).toContain("spec.triggers.0.metadata: 'taskQueue' is a required property");
    expect(run.output).toContain("spec.triggers.0.metadata.targetQueueSize: 20 is not of type 'string'");
  });

  test('a broken PodMonitor fails its schema (generated from the Prometheus Operator CRD): a misspelt field, a port that is not a name', () => {
    const run = validateDeploy('k8s', path.join(FIXTURES, 'broken-podmonitor.yaml'));
    expect(run.status).toBe(1);
    expect(run.output).toContain("spec.podMetricsEndpoints.0: Additional properties are not allowed ('intervall' was unexpected)");
    expect(run.output).toContain("spec.podMetricsEndpoints.0.port: 9464 is not of type 'string'");
  });

  test('with metrics.podMonitor: one PodMonitor scrapes every Flow pod on `metrics` and the workers on `sdk-metrics`, ports their containers name', () => {
    expectPass(helmRun);
    expect(rendered('default').filter((m) => m.kind === 'PodMonitor')).toEqual([]);
    // Scraped through the PodMonitor, the pods carry no prometheus.io annotations (9464 would be scraped twice); without it they do.
    for (const name of ['flow-api', ...POOLS.map((pool) => `flow-worker-${pool}`)]) {
      expect(find(rendered('options'), 'Deployment', name).spec.template.metadata.annotations).not.toHaveProperty(['prometheus.io/scrape']);
      expect(find(rendered('default'), 'Deployment', name).spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9464' });
    }
    const manifests = rendered('options');
    const monitor = find(manifests, 'PodMonitor', 'flow');
    expect(monitor.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
    expect(monitor.spec.podMetricsEndpoints.map((e: Manifest) => [e.port, e.path])).toEqual([
      ['metrics', '/metrics'],
      ['sdk-metrics', '/metrics'],
    ]);
    const selects = (labels: Record<string, string>) => Object.entries(monitor.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => labels[k] === v);
    const portNames = (deployment: Manifest) => deployment.spec.template.spec.containers[0].ports.map((p: Manifest) => p.name);
    const api = find(manifests, 'Deployment', 'flow-api');
    expect(selects(api.spec.template.metadata.labels)).toBe(true);
    expect(portNames(api)).toContain('metrics');
    for (const pool of POOLS) {
      const worker = find(manifests, 'Deployment', `flow-worker-${pool}`);
      expect(selects(worker.spec.template.metadata.labels)).toBe(true);
      expect(portNames(worker)).toEqual(expect.arrayContaining(['metrics', 'sdk-metrics']));
      expect(envOf(worker.spec.template.spec.containers[0])).toMatchObject({ FLOW_TEMPORAL_METRICS_PORT: '9465' });
    }
  });

  test('default values: the API and one Deployment per pool, with probes, resources, PDBs and CPU HPAs', () => {
    expectPass(helmRun);
    const manifests = rendered('default');
    const api = find(manifests, 'Deployment', 'flow-api').spec.template.spec.containers[0];
    expect(api.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(api.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(api.resources.requests).toHaveProperty('cpu');
    expect(find(manifests, 'Service', 'flow-api').spec.ports[0]).toMatchObject({ port: 8080, targetPort: 'http' });
    for (const name of ['flow-api', ...POOLS.map((pool) => `flow-worker-${pool}`)]) {
      const hpa = find(manifests, 'HorizontalPodAutoscaler', name);
      expect(hpa.apiVersion).toBe('autoscaling/v2');
      expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name });
      expect(hpa.spec.metrics[0].resource).toMatchObject({ name: 'cpu', target: { type: 'Utilization' } });
      expect(find(manifests, 'PodDisruptionBudget', name).apiVersion).toBe('policy/v1');
    }
    for (const pool of POOLS) {
      const deployment = find(manifests, 'Deployment', `flow-worker-${pool}`);
      const worker = deployment.spec.template.spec.containers[0];
      expect(worker.command).toEqual(['node', '--import', 'tsx', 'workers/main.ts']);
      expect(envOf(worker)).toMatchObject({
        FLOW_WORKER_POOL: pool,
        FLOW_WORKER_HEALTH_PORT: '8081',
        FLOW_METRICS_PORT: '9464',
        FLOW_TEMPORAL_METRICS_PORT: '9465',
        TEMPORAL_ADDRESS: expect.any(String),
      });
      // The per-pool concurrency variable workers/pools.ts reads for this pool is set.
      const concurrency = Object.entries(POOL_ENV).filter(([, [forPool]]) => forPool === pool).map(([name]) => name);
      expect(concurrency.filter((name) => name in envOf(worker))).not.toEqual([]);
      expect(deployment.spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9464' });
      expect(worker.ports).toContainEqual({ name: 'health', containerPort: 8081, protocol: 'TCP' });
      expect(worker.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(worker.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
      expect(worker.envFrom).toEqual([{ configMapRef: { name: 'flow-config' } }, { secretRef: { name: 'flow-secrets' } }]);
      // The worker hands its tasks back before the pod's grace period ends (the code's own default was a fixed 20 s).
      expect(Number(envOf(worker).FLOW_WORKER_SHUTDOWN_GRACE_S)).toBe(deployment.spec.template.spec.terminationGracePeriodSeconds - 10);
      expect(deployment.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
      // Replicas belong to the HPA when one scales the pool.
      expect(deployment.spec).not.toHaveProperty('replicas');
    }
    expect(manifests.some((m) => m.kind === 'ScaledObject')).toBe(false);
  });

  test('small values: one replica per pool, no PDBs, only the trajectory pool autoscales', () => {
    expectPass(helmRun);
    const manifests = rendered('small');
    expect(manifests.filter((m) => m.kind === 'PodDisruptionBudget')).toEqual([]);
    expect(manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler').map((m) => m.metadata.name)).toEqual(['flow-worker-trajectory']);
    expect(find(manifests, 'Deployment', 'flow-api').spec.replicas).toBe(1);
    expect(find(manifests, 'Deployment', 'flow-worker-cpu').spec.replicas).toBe(1);
  });

  test("large values: KEDA's Temporal scaler drives the trajectory pool on its task queue's backlog, with a CPU trigger instead of an HPA", () => {
    expectPass(helmRun);
    const manifests = rendered('large');
    const scaled = find(manifests, 'ScaledObject', 'flow-worker-trajectory');
    expect(scaled.apiVersion).toBe('keda.sh/v1alpha1');
    expect(scaled.spec.scaleTargetRef.name).toBe('flow-worker-trajectory');
    expect(scaled.spec.triggers[0]).toEqual({
      type: 'temporal',
      metadata: {
        endpoint: 'temporal-frontend.temporal.svc.cluster.local:7233',
        namespace: 'default',
        taskQueue: trajectoryTaskQueue(TRAINING_TASK_QUEUE),
        queueTypes: 'activity',
        targetQueueSize: '20',
        activationTargetQueueSize: '0',
      },
    });
    expect(scaled.spec.triggers[1]).toEqual({ type: 'cpu', metricType: 'Utilization', metadata: { value: '70' } });
    // Two autoscalers on one Deployment would fight: KEDA's HPA replaces the chart's.
    expect(manifests.some((m) => m.kind === 'HorizontalPodAutoscaler' && m.metadata.name === 'flow-worker-trajectory')).toBe(false);
    expect(find(manifests, 'HorizontalPodAutoscaler', 'flow-worker-cpu').spec.maxReplicas).toBe(8);
  });

  test('the migrations and the search attributes run as pre-install/pre-upgrade hooks', () => {
    expectPass(helmRun);
    const manifests = rendered('default');
    const migrate = find(manifests, 'Job', 'flow-migrate');
    expect(migrate.metadata.annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(migrate.spec.template.spec.containers[0].command).toEqual(['node_modules/.bin/prisma', 'migrate', 'deploy']);
    const register = find(manifests, 'Job', 'flow-search-attributes');
    expect(register.metadata.annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(register.spec.template.spec.containers[0]).toMatchObject({
      image: 'flow:0.1.0',
      command: ['node', '--import', 'tsx', 'deploy/registerSearchAttributes.ts'],
    });
  });

  test("the hook Jobs run before the chart's ServiceAccount exists, so they name none; the search-attribute Job gets Temporal's credentials from the Secret and `config`", () => {
    expectPass(helmRun);
    for (const variant of ['default', 'options']) {
      const manifests = rendered(variant);
      for (const name of ['flow-migrate', 'flow-search-attributes']) {
        const pod = find(manifests, 'Job', name).spec.template.spec;
        expect(pod.serviceAccountName).toBeUndefined();
        expect(pod.automountServiceAccountToken).toBe(false);
      }
    }
    // A chart-made Secret that changes restarts every pod that reads it.
    for (const name of ['flow-api', ...POOLS.map((pool) => `flow-worker-${pool}`)]) {
      expect(find(rendered('options'), 'Deployment', name).spec.template.metadata.annotations['checksum/secret']).toMatch(/^[0-9a-f]{64}$/);
      expect(find(rendered('default'), 'Deployment', name).spec.template.metadata.annotations['checksum/secret']).toBeUndefined();
    }
    const manifests = rendered('no-migrations');
    expect(manifests.filter((m) => m.kind === 'Job').map((m) => m.metadata.name)).toEqual(['flow-search-attributes']);
    const register = find(manifests, 'Job', 'flow-search-attributes').spec.template.spec.containers[0];
    expect(register.envFrom).toEqual([{ secretRef: { name: 'flow-secrets' } }]);
    // The ConfigMap does not exist yet at pre-install: `config` is written into the Job itself.
    expect(envOf(register)).toMatchObject({ TEMPORAL_TLS: 'true', FLOW_BLOB_STORE: 's3' });
    // The namespace comes from temporal.namespace, once (a TEMPORAL_NAMESPACE in `config` is refused: see below).
    expect(register.env.filter((e: { name: string }) => e.name === 'TEMPORAL_NAMESPACE')).toEqual([{ name: 'TEMPORAL_NAMESPACE', value: 'other' }]);
    // The Secret it reads is a hook too, made before it (weight -10 < -5).
    const secret = find(manifests, 'Secret', 'flow-secrets');
    expect(secret.metadata.annotations).toMatchObject({ 'helm.sh/hook': 'pre-install,pre-upgrade', 'helm.sh/hook-weight': '-10' });
    // An upgrade that turns a regular Secret into this hook would otherwise delete it as gone from the release.
    expect(secret.metadata.annotations['helm.sh/resource-policy']).toBe('keep');
  });

  test('a setting the chart derives from another value is refused in `config`, `api.env` or a pool\'s `env`, naming the value to set (one of the two would be ignored)', () => {
    const helm = (...args: string[]) => spawnSync(path.join(ROOT, '.flow/tools/go/bin/helm'), ['template', 'flow', path.join(ROOT, 'helm/flow'), '--kube-version', '1.30.0', ...args], { encoding: 'utf8' });
    for (const [place, value, instead] of [
      ['config.TEMPORAL_NAMESPACE', 'other', 'temporal.namespace'],
      ['config.FLOW_TASK_QUEUE', 'q', 'temporal.taskQueue'],
      ['config.FLOW_METRICS_PORT', '9999', 'metrics.otelPort'],
      ['api.env.FLOW_API_PORT', '9000', 'api.port'],
      ['workers.pools.cpu.env.FLOW_WORKER_POOL', 'trajectory', 'workers.pools'],
    ]) {
      const run = helm('--set', `${place}=${value}`);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain(`${place} is set by the chart from ${instead}`);
    }
    // The Web UI's address is the chart's only when temporal.uiUrl names it.
    expect(helm('--set', 'temporal.uiUrl=http://ui', '--set', 'config.FLOW_TEMPORAL_UI_URL=http://other').stderr).toContain('config.FLOW_TEMPORAL_UI_URL is set by the chart from temporal.uiUrl');
    expect(helm('--set', 'config.FLOW_TEMPORAL_UI_URL=http://ui').status).toBe(0);
    // Settings the chart leaves to `config` and the pools' env still render.
    expect(helm('--set', 'config.TEMPORAL_TLS=true', '--set', 'workers.pools.cpu.env.FLOW_CPU_MAX_CONCURRENT_ACTIVITIES=4').status).toBe(0);
  });
});
