"""Start a training job on the built-in simulated environment and print its id.

    JOB=$(python3 examples/python/start_job.py)
    python3 examples/python/start_job.py my-agent 6      # agent id, iterations
"""
import sys

from flow_api import run


def main(api):
    agent_id = sys.argv[1] if len(sys.argv) > 1 else "python-example-agent"
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    started = api.call(
        "training.start_grpo",
        agent_id=agent_id,
        task_set="simulated-small",  # or training_queries=[{"id": ..., "prompt": ..., "expected_answer": ...}]
        config={
            "iterations": iterations,
            "group_size": 8,  # trajectories per query, compared within their group
            "batch_size": 2,  # queries per iteration
            "learning_rate": 0.5,
            "budget_usd": 2,
            "checkpoint_interval": 1,
            "eval_interval": 2,
        },
    )
    print(started["job_id"])


run(main)
