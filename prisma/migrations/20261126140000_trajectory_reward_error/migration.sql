-- Reward registry (FLOW-017): a trajectory whose reward function returned something other than a
-- finite number in [0, 1] (or that a judge could not score) is marked with why, keeps a null
-- reward and is left out of its group's advantages.

-- AlterTable
ALTER TABLE "trajectories" ADD COLUMN "reward_error" TEXT;
