"""A minimal client for Flow's JSON-RPC API, standard library only (urllib, json).

FLOW_API_URL (default http://127.0.0.1:8080) and FLOW_TOKEN (a JWT: `npm start` prints one,
`scripts/flow token` mints one) say where the API is and who is calling, as for the `flow` CLI.
"""
import itertools
import json
import os
import sys
import urllib.error
import urllib.request

_ids = itertools.count(1)


class FlowApiError(Exception):
    """The API refused the call: `code` is the JSON-RPC error code, `reason` its name."""

    def __init__(self, code, message, data=None):
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.data = data or {}
        self.reason = self.data.get("reason")


class FlowApi:
    def __init__(self, url=None, token=None, timeout=30):
        self.url = (url or os.environ.get("FLOW_API_URL") or "http://127.0.0.1:8080").rstrip("/") + "/rpc"
        self.token = token or os.environ.get("FLOW_TOKEN")
        if not self.token:
            sys.exit("FLOW_TOKEN is not set: export the token `npm start` printed, or mint one with `scripts/flow token`")
        self.timeout = timeout

    def call(self, method, **params):
        """Calls one method with named params; returns its result or raises FlowApiError."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={"content-type": "application/json", "authorization": f"Bearer {self.token}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            # Protocol-level refusals (413, 415, 429) still carry a JSON-RPC error body.
            answer = json.load(error)
        if "error" in answer:
            error = answer["error"]
            raise FlowApiError(error["code"], error["message"], error.get("data"))
        return answer["result"]


def run(main):
    """Runs an example's main(api); an API refusal is one line on stderr and exit status 1."""
    try:
        sys.exit(main(FlowApi()) or 0)
    except FlowApiError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except urllib.error.URLError as error:
        print(f"error: cannot reach the API: {error.reason}", file=sys.stderr)
        sys.exit(1)
