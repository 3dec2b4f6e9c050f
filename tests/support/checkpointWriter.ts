/**
 * A second worker process for tests/integration/checkpoints.test.ts: saves one checkpoint
 * through the checkpoint store, as a training worker's `saveCheckpoint` activity would, with
 * the database and blob store its environment names (DATABASE_URL, FLOW_BLOB_STORE, ...).
 *
 *   node --import tsx tests/support/checkpointWriter.ts '<SaveCheckpointInput as JSON>'
 *
 * Prints the saved checkpoint's summary as JSON on stdout.
 */
import { blobStoreFromEnv } from '../../adapters/checkpoints/blobStore';
import { CheckpointStore, type SaveCheckpointInput } from '../../adapters/checkpoints/checkpointStore';
import { createPrismaClient, createRepositories, requireDatabaseUrl } from '../../adapters/db';

async function main() {
  const input = JSON.parse(process.argv[2] ?? '') as SaveCheckpointInput;
  const prisma = createPrismaClient(requireDatabaseUrl(), { poolSize: 2 });
  try {
    const store = new CheckpointStore(createRepositories(prisma).progress, blobStoreFromEnv(process.env));
    const saved = await store.save(input);
    process.stdout.write(`${JSON.stringify({ pid: process.pid, saved })}\n`);
  } finally {
    await prisma.$disconnect();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
