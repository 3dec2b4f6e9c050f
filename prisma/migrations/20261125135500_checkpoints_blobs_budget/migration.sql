-- Checkpoint payloads move to the blob store (activities/checkpoints/blobStore.ts). The row keeps
-- where the payload is, its sha256 and its size. Checkpoints written before this migration have
-- their payload only in the two columns dropped here, so once those are gone such a row could
-- never be loaded: it is deleted rather than left pointing at a blob that does not exist.
-- (No semicolons in comments: the adapter's script runner splits statements on them.)
DELETE FROM "policy_checkpoints";

-- AlterTable
ALTER TABLE "policy_checkpoints" DROP COLUMN "optimizer_state",
DROP COLUMN "policy",
ADD COLUMN     "blob_key" TEXT NOT NULL,
ADD COLUMN     "content_hash" TEXT NOT NULL,
ADD COLUMN     "size_bytes" INTEGER NOT NULL;

-- AlterTable
ALTER TABLE "training_jobs" ADD COLUMN     "budget_alerts" JSONB NOT NULL DEFAULT '[]';

-- CreateTable
CREATE TABLE "flow_settings" (
    "key" TEXT NOT NULL,
    "value" JSONB NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "flow_settings_pkey" PRIMARY KEY ("key")
);
