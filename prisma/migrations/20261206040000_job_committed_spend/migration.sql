-- Budget admission per call: a job's committed spend (settled calls at their cost, calls in
-- flight at their worst case), so one conditional UPDATE admits a call only while it fits the
-- budget. Jobs from before the spend ledger start from what they had spent.

-- AlterTable
ALTER TABLE "training_jobs" ADD COLUMN "committed_usd" DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE "training_jobs" SET "committed_usd" = "spend_usd";
