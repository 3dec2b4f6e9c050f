/** A PostgreSQL trigger that makes a job's budget record slow or fail, for tests and the replay recorder. */
import type { PrismaClient } from '../../adapters/db';

/**
 * A trigger on `jobId`'s row that runs `body` (PL/pgSQL) in every statement changing its budget
 * (recordBudget's) and no other; `drop()` removes it.
 */
export async function onBudgetChange(prisma: PrismaClient, jobId: string, body: string) {
  const name = `budget_${jobId.replace(/[^a-z0-9]/gi, '_')}`;
  await prisma.$executeRawUnsafe(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${body} END $$`);
  await prisma.$executeRawUnsafe(
    `CREATE TRIGGER ${name} BEFORE UPDATE ON training_jobs FOR EACH ROW WHEN (NEW.id = '${jobId}' AND NEW.budget_usd IS DISTINCT FROM OLD.budget_usd) EXECUTE FUNCTION ${name}()`,
  );
  return {
    async drop() {
      await prisma.$executeRawUnsafe(`DROP TRIGGER IF EXISTS ${name} ON training_jobs`);
      await prisma.$executeRawUnsafe(`DROP FUNCTION IF EXISTS ${name}()`);
    },
  };
}
