"""What a running agent does to stay on its active policy, standard library only: GET
/agents/{agent_id}/policy with the ETag of the version it holds (If-None-Match). An unchanged
policy is a 304 with no body; a promotion or rollback is a 200 with the new version and ETag.

    FLOW_TOKEN=$(scripts/flow token --roles agent) python3 examples/python/fetch_policy.py my-agent 3

Prints one line per poll; exits 1 when the API refuses (no active version, another tenant's agent).
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class PolicyCache:
    """An agent's copy of its active policy, revalidated with the ETag."""

    def __init__(self, url, token, agent_id, timeout=10):
        self.url = f"{url.rstrip('/')}/agents/{urllib.parse.quote(agent_id, safe='')}/policy"
        self.token = token
        self.timeout = timeout
        self.policy = None
        self.etag = None

    def poll(self):
        """Returns (policy, changed)."""
        headers = {"authorization": f"Bearer {self.token}"}
        if self.etag:
            headers["if-none-match"] = self.etag
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, headers=headers), timeout=self.timeout) as response:
                self.policy = json.load(response)
                self.etag = response.headers["etag"]
                return self.policy, True
        except urllib.error.HTTPError as error:
            # urllib reports a 304 as an error: the copy we hold is current.
            if error.code == 304 and self.policy is not None:
                return self.policy, False
            body = error.read().decode()
            try:
                message = json.loads(body)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {error.code}"
            raise RuntimeError(message) from None


def main():
    if len(sys.argv) < 2 or not os.environ.get("FLOW_TOKEN"):
        print("usage: FLOW_TOKEN=<a token with policy:read> fetch_policy.py <agent_id> [polls] [interval s]", file=sys.stderr)
        return 2
    agent_id = sys.argv[1]
    polls = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
    cache = PolicyCache(os.environ.get("FLOW_API_URL") or "http://127.0.0.1:8080", os.environ["FLOW_TOKEN"], agent_id)
    for i in range(polls):
        if i:
            time.sleep(interval)
        try:
            policy, changed = cache.poll()
        except (RuntimeError, urllib.error.URLError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if changed:
            print(f"v{policy['version']} {policy['etag']}: {len(policy['policy']['lessons'])} lessons, system prompt of {len(policy['system_prompt'])} characters")
        else:
            print(f"v{policy['version']} not modified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
