-- The policy registry (issue 16): immutable policy versions per (tenant, agent), the highest
-- version is the active one. The unique key serialises concurrent promotions of one agent.

-- CreateTable
CREATE TABLE "policy_versions" (
    "id" UUID NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "agent_id" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "policy" JSONB NOT NULL,
    "content_hash" TEXT NOT NULL,
    "source_job_id" TEXT NOT NULL,
    "source_run" INTEGER NOT NULL,
    "source_iteration" INTEGER NOT NULL,
    "evaluation" JSONB,
    "rollback_of" INTEGER,
    "reason" TEXT,
    "refusal" TEXT,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "policy_versions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "policy_versions_tenant_id_agent_id_version_key" ON "policy_versions"("tenant_id", "agent_id", "version");
