-- The validated input of each job (training.start_grpo writes it), so training.resume can
-- start a later run of the job from it. Nullable: jobs created before this migration, or
-- started outside the API, have none and cannot be resumed.
-- (No semicolons in comments: the adapter's script runner splits statements on them.)

-- AlterTable
ALTER TABLE "training_jobs" ADD COLUMN     "input" JSONB;
