"""Export a job's successful trajectories as chat fine-tuning lines (JSONL), page by page.

    python3 examples/python/export_data.py "$JOB" /tmp/flow-export.jsonl
"""
import sys

from flow_api import run

PAGE = 1000


def main(api):
    if len(sys.argv) not in (2, 3):
        print("usage: export_data.py <job id> [out.jsonl]", file=sys.stderr)
        return 2
    job_id = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else "trajectories.jsonl"
    written = 0
    with open(out, "w", encoding="utf-8") as file:
        offset = 0
        while True:
            page = api.call("training.export_trajectories", job_id=job_id, format="jsonl_chat", limit=PAGE, offset=offset)
            for line in page["lines"]:
                file.write(line + "\n")
            written += page["count"]
            offset += page["count"]
            if offset >= page["total"] or page["count"] == 0:
                break
    print(f"{written} successful trajectories written to {out}")


run(main)
