/**
 * What every example needs: the typed client (api/client/flowClient.ts) pointed at the API by
 * FLOW_API_URL (default http://127.0.0.1:8080) and authenticated by FLOW_TOKEN, the same two
 * variables the `flow` CLI reads. `npm start` prints both; `scripts/flow token` mints a token.
 */
import { FlowClient } from '../api/client/flowClient';

export function flowClientFromEnv(env: NodeJS.ProcessEnv = process.env): FlowClient {
  const token = env.FLOW_TOKEN;
  if (!token) {
    console.error('FLOW_TOKEN is not set: export the token `npm start` printed, or mint one with `scripts/flow token`');
    process.exit(2);
  }
  return new FlowClient({ url: env.FLOW_API_URL ?? 'http://127.0.0.1:8080', token });
}

/** Runs an example's main, printing an API refusal as one line and exiting 1. */
export function run(main: () => Promise<number | void>): void {
  main().then(
    (code) => process.exit(code ?? 0),
    (error: Error) => {
      console.error(`error: ${error.message}`);
      process.exit(1);
    },
  );
}
