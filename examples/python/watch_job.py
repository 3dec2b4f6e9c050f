"""Follow a job until it ends, one line per finished iteration, then the held-out evaluation.
Exits 0 when the job completed, 3 when it ended otherwise.

    python3 examples/python/watch_job.py "$JOB"
"""
import sys
import time

from flow_api import run

TERMINAL = {"completed", "failed", "cancelled", "budget_exceeded"}


def main(api):
    if len(sys.argv) != 2:
        print("usage: watch_job.py <job id>", file=sys.stderr)
        return 2
    job_id = sys.argv[1]
    shown = 0
    while True:
        status = api.call("training.get_status", job_id=job_id)
        history = api.call("training.get_history", job_id=job_id)
        for entry in history["iterations"][shown:]:
            metrics = entry["metrics"] or {}
            print(
                f"run {entry['run']} iteration {entry['iteration']}: "
                f"success {metrics.get('success_rate', 0) * 100:.0f}%, reward {metrics.get('mean_reward', 0):.3f}, "
                f"spend ${entry['spend_usd']:.4f}",
                flush=True,
            )
        shown = len(history["iterations"])
        if status["status"] in TERMINAL:
            reason = f" ({status['reason']})" if status.get("reason") else ""
            print(f"job {job_id} {status['status']}{reason}; spent ${status['spend_usd']:.4f} of ${status['budget_usd']}")
            evaluation = status.get("evaluation")
            if evaluation:
                before = evaluation["baseline"]["success_rate"]["value"]
                after = evaluation["current"]["success_rate"]["value"]
                verdict = " (significant)" if evaluation["significant_improvement"] else ""
                print(f"held-out evaluation: success {before:.0%} untrained -> {after:.0%} trained, Welch p = {evaluation['welch']['p']:.4f}{verdict}")
            return 0 if status["status"] == "completed" else 3
        time.sleep(0.5)


run(main)
