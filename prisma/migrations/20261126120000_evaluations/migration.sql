-- Held-out evaluations (FLOW-010): one row per evaluated policy, with the baseline's metrics and
-- Welch's t-test in the summary. Idempotent writes key on (job, run, iteration, kind).

-- CreateTable
CREATE TABLE "evaluations" (
    "id" UUID NOT NULL,
    "job_id" TEXT NOT NULL,
    "run" INTEGER NOT NULL,
    "iteration" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "summary" JSONB NOT NULL,
    "p_value" DOUBLE PRECISION NOT NULL,
    "significant" BOOLEAN NOT NULL,
    "cost_usd" DOUBLE PRECISION NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "evaluations_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "evaluations_job_id_created_at_idx" ON "evaluations"("job_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "evaluations_job_id_run_iteration_kind_key" ON "evaluations"("job_id", "run", "iteration", "kind");

-- AddForeignKey
ALTER TABLE "evaluations" ADD CONSTRAINT "evaluations_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "training_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
