"""llama.cpp's OpenAI-compatible server (xllamacpp) on 127.0.0.1, serving one GGUF.

Started by workers/localModelServer.ts with the venv that `npm run setup:local-model` made.
Arguments are JSON on argv[1]: model, port (0 = any free port), ctx (tokens per slot), parallel
(slots), threads. Prints one JSON line {"address": ...} when listening, then serves until its
stdin closes or it receives SIGTERM/SIGINT (so it never outlives the Node process that owns it).
"""
import json
import signal
import sys
import threading

import xllamacpp as xlc


def main() -> None:
    options = json.loads(sys.argv[1])
    params = xlc.CommonParams()
    params.model.path = options["model"]
    params.hostnames = ["127.0.0.1"]  # never reachable from another machine
    params.port = int(options.get("port", 0))
    params.n_parallel = int(options.get("parallel", 1))
    params.n_ctx = int(options.get("ctx", 4096)) * params.n_parallel
    params.cpuparams.n_threads = int(options.get("threads", 2))
    params.cpuparams_batch.n_threads = int(options.get("threads", 2))
    params.cache_prompt = bool(options.get("cache_prompt", True))
    params.ui = False
    params.endpoint_metrics = True
    params.endpoint_slots = True
    params.warmup = True
    params.model_alias = {options.get("alias", "local")}
    server = xlc.Server(params)
    print(json.dumps({"address": server.listening_address}), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()


if __name__ == "__main__":
    main()
