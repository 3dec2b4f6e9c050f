-- CreateEnum
CREATE TYPE "job_status" AS ENUM ('queued', 'running', 'paused', 'completed', 'failed', 'cancelled', 'budget_exceeded');

-- CreateTable
CREATE TABLE "training_jobs" (
    "id" TEXT NOT NULL,
    "agent_id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "owner_id" TEXT NOT NULL,
    "status" "job_status" NOT NULL DEFAULT 'queued',
    "priority" TEXT NOT NULL,
    "config" JSONB NOT NULL,
    "current_run" INTEGER NOT NULL DEFAULT 1,
    "iteration" INTEGER NOT NULL DEFAULT 0,
    "phase" TEXT,
    "last_metrics" JSONB,
    "spend_usd" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "budget_usd" DOUBLE PRECISION NOT NULL,
    "reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "training_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "trajectories" (
    "id" UUID NOT NULL,
    "job_id" TEXT NOT NULL,
    "run" INTEGER NOT NULL,
    "iteration" INTEGER NOT NULL,
    "query_index" INTEGER NOT NULL,
    "sample_index" INTEGER NOT NULL,
    "query_id" TEXT NOT NULL,
    "agent_id" TEXT NOT NULL,
    "success" BOOLEAN NOT NULL,
    "verified" BOOLEAN NOT NULL,
    "reward" DOUBLE PRECISION,
    "advantage" DOUBLE PRECISION,
    "step_advantages" JSONB,
    "steps" JSONB NOT NULL,
    "final_answer" TEXT,
    "error" TEXT,
    "prompt_tokens" INTEGER NOT NULL,
    "completion_tokens" INTEGER NOT NULL,
    "cost_usd" DOUBLE PRECISION NOT NULL,
    "log_prob" DOUBLE PRECISION,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "ended_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "trajectories_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "training_iterations" (
    "job_id" TEXT NOT NULL,
    "run" INTEGER NOT NULL,
    "iteration" INTEGER NOT NULL,
    "metrics" JSONB NOT NULL,
    "policy_version" INTEGER NOT NULL,
    "spend_usd" DOUBLE PRECISION NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "training_iterations_pkey" PRIMARY KEY ("job_id","run","iteration")
);

-- CreateTable
CREATE TABLE "policy_checkpoints" (
    "id" UUID NOT NULL,
    "job_id" TEXT NOT NULL,
    "run" INTEGER NOT NULL,
    "iteration" INTEGER NOT NULL,
    "policy" JSONB NOT NULL,
    "optimizer_state" JSONB NOT NULL,
    "metrics" JSONB NOT NULL,
    "score" DOUBLE PRECISION,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "policy_checkpoints_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "training_jobs_agent_id_idx" ON "training_jobs"("agent_id");

-- CreateIndex
CREATE INDEX "training_jobs_created_at_idx" ON "training_jobs"("created_at");

-- CreateIndex
CREATE INDEX "training_jobs_tenant_id_status_idx" ON "training_jobs"("tenant_id", "status");

-- CreateIndex
CREATE INDEX "trajectories_job_id_idx" ON "trajectories"("job_id");

-- CreateIndex
CREATE INDEX "trajectories_agent_id_idx" ON "trajectories"("agent_id");

-- CreateIndex
CREATE INDEX "trajectories_created_at_idx" ON "trajectories"("created_at");

-- CreateIndex
CREATE UNIQUE INDEX "trajectories_identity_key" ON "trajectories"("job_id", "run", "iteration", "query_index", "sample_index");

-- CreateIndex
CREATE INDEX "policy_checkpoints_job_id_idx" ON "policy_checkpoints"("job_id");

-- CreateIndex
CREATE INDEX "policy_checkpoints_created_at_idx" ON "policy_checkpoints"("created_at");

-- CreateIndex
CREATE UNIQUE INDEX "policy_checkpoints_job_id_run_iteration_key" ON "policy_checkpoints"("job_id", "run", "iteration");

-- AddForeignKey
ALTER TABLE "trajectories" ADD CONSTRAINT "trajectories_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "training_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "training_iterations" ADD CONSTRAINT "training_iterations_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "training_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "policy_checkpoints" ADD CONSTRAINT "policy_checkpoints_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "training_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
