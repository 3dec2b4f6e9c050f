-- The spend ledger: every model call, written before it is made at its worst case and settled with
-- its tokens and cost as it returns, so a job's spend is what the provider billed, including calls
-- made by activity attempts that were killed (mid-call: at the call's worst case).

-- CreateTable
CREATE TABLE "llm_calls" (
    "call_key" TEXT NOT NULL,
    "job_id" TEXT NOT NULL,
    "activity" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "model" TEXT NOT NULL,
    "prompt_tokens" INTEGER NOT NULL,
    "completion_tokens" INTEGER NOT NULL,
    "cost_usd" DOUBLE PRECISION NOT NULL,
    "settled" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "llm_calls_pkey" PRIMARY KEY ("call_key")
);

-- CreateIndex
CREATE INDEX "llm_calls_job_id_idx" ON "llm_calls"("job_id");

-- CreateIndex
CREATE INDEX "llm_calls_activity_idx" ON "llm_calls"("activity");
