/**
 * The policy updater's integration fixture: a real local OpenAI-compatible server that gives the
 * answers a test queues (in order, then the simulated model's own), the updater activities
 * calling it over HTTP, and repositories on the suite's real PostgreSQL. `useScriptedUpdater()`
 * registers its own jest hooks, so call it at a file's top level.
 */
import { createPrismaClient, createRepositories, type PrismaClient, type Repositories } from '../../adapters/db';
import { ChatClient } from '../../adapters/llm/chatClient';
import { createPolicyUpdateActivities } from '../../activities/policyUpdate';
import { startSimulatedModelServer, type ChatCompletionRequestBody, type ScriptedResponse, type SimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { requireEnv } from './harness';

export interface ScriptedUpdater {
  /** The answers still to give, first first; emptied before each test. */
  answers: ScriptedResponse[];
  /** Every request the server received during the current test. */
  readonly requests: ChatCompletionRequestBody[];
  readonly repos: Repositories;
  /** Fresh updater activities on the scripted server and the real trajectory store. */
  updater(): ReturnType<typeof createPolicyUpdateActivities>;
  /** Requests the server is holding unanswered (scripted `hang`) whose connection is still open. */
  hanging(): number;
}

/** An answer whose message content is `value`: a string as it is, anything else as JSON. */
export const scriptedContent = (value: unknown): ScriptedResponse => ({ kind: 'content', content: typeof value === 'string' ? value : JSON.stringify(value) });

export function useScriptedUpdater(): ScriptedUpdater {
  let prisma: PrismaClient | undefined;
  let repos: Repositories | undefined;
  let server: SimulatedModelServer | undefined;
  const fixture: ScriptedUpdater = {
    answers: [],
    requests: [],
    get repos() {
      if (!repos) throw new Error('useScriptedUpdater: repositories are ready only inside tests');
      return repos;
    },
    updater() {
      if (!server) throw new Error('useScriptedUpdater: the model server is ready only inside tests');
      return createPolicyUpdateActivities({ chat: new ChatClient({ baseURL: server.url }), trajectories: fixture.repos.trajectories });
    },
    hanging: () => server?.hanging() ?? 0,
  };
  beforeAll(async () => {
    prisma = createPrismaClient(requireEnv('DATABASE_URL'));
    repos = createRepositories(prisma);
    server = await startSimulatedModelServer({
      respond: (body) => {
        fixture.requests.push(body);
        return fixture.answers.shift();
      },
    });
  });
  afterAll(async () => {
    await server?.close();
    await prisma?.$disconnect();
  });
  beforeEach(() => {
    fixture.answers = [];
    fixture.requests.length = 0;
  });
  return fixture;
}
