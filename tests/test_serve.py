"""aiterms.serve: the HTTP server answers /health and /generate like the model itself, refuses malformed requests with
400 and a message naming the field, answers concurrent requests, survives errors; the CLI starts and serves.

Every server here listens on 127.0.0.1, on a free port (port 0), and is spoken to with urllib only.
"""
from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import aiterms
from aiterms.arithmetic import extract_answer
from aiterms.serve import MAX_BODY_BYTES, MAX_SEED, main, make_server, serve
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, GPTConfig, generate, generate_batch

BLOCK = 96
METADATA = {"fmt": "cot", "note": "a freshly initialised model for the server tests"}
# no proxy, whatever the environment says: these requests must go to 127.0.0.1 directly
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The reference generations run in the test's main thread, where PyTorch's two intra-op threads on a shared
    2-core machine make a 64-token generation take a second instead of 15 ms; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    config = GPTConfig(vocab_size=TOKENIZER.vocab_size, block_size=BLOCK, n_layer=1, n_head=2, n_embd=32)
    path = tmp_path_factory.mktemp("serve") / "tiny.pt"
    GPT.from_seed(config, seed=0).save(path, **METADATA)
    return path


@pytest.fixture(scope="module")
def model(checkpoint) -> GPT:
    return GPT.load(checkpoint)


@pytest.fixture(scope="module")
def server(checkpoint):
    with serve(checkpoint, host="127.0.0.1", port=0, quiet=True) as running:
        yield running


def call(url: str, payload=None, *, raw=None, method: str | None = None, headers: dict | None = None,
         timeout: float = 20):
    """``(status, decoded JSON body or None, response headers)`` of one request; a JSON ``payload`` or ``raw`` bytes
    (or an iterable of bytes, sent chunked) as the body."""
    data = json.dumps(payload).encode() if payload is not None else raw
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with OPENER.open(request, timeout=timeout) as response:
            status, body, response_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as e:
        status, body, response_headers = e.code, e.read(), e.headers
        e.close()
    assert response_headers.get_content_type() == "application/json"
    return status, (json.loads(body) if body else None), response_headers


def greedy(model: GPT, prompt: str, max_new_tokens: int = 64) -> list[int]:
    return generate(model, TOKENIZER.encode_prompt(prompt), max_new_tokens, eos_id=TOKENIZER.eos_id)


# ---------------------------------------------------------------- what it answers
def test_health(server, model):
    status, body, _ = call(server.url + "/health")
    assert status == 200 and body["status"] == "ok"
    assert body["model"]["checkpoint"] == "tiny.pt"
    assert body["model"]["config"]["block_size"] == BLOCK and body["model"]["config"]["n_embd"] == 32
    assert body["model"]["metadata"] == METADATA
    assert body["parameters"] == model.num_parameters()
    assert call(server.url + "/health?verbose=1")[0] == 200          # a query string does not change the path


@pytest.mark.parametrize("prompt, max_new_tokens", [("47+85=", None), ("999-1=", 5), ("", 3), ("1" * (BLOCK - 2), 1)])
def test_greedy_generation_equals_the_model(server, model, prompt, max_new_tokens):
    payload = {"prompt": prompt} if max_new_tokens is None else {"prompt": prompt, "max_new_tokens": max_new_tokens}
    status, body, _ = call(server.url + "/generate", payload)
    expected = greedy(model, prompt, max_new_tokens or 64)
    assert status == 200
    assert body["prompt"] == prompt
    assert body["completion"] == TOKENIZER.decode(expected)
    assert body["tokens"] == len(expected)
    assert body["answer"] == extract_answer(body["completion"])
    assert body["finish_reason"] == ("eos" if expected[-1] == TOKENIZER.eos_id else "length")
    assert isinstance(body["seconds"], float) and body["seconds"] >= 0


def test_default_max_new_tokens_fits_the_context(server, model):
    prompt = "1" * (BLOCK - 6)                   # BLOCK - 4 prompt tokens: room for 5 new ones, not the default 64
    status, body, _ = call(server.url + "/generate", {"prompt": prompt})
    assert status == 200 and body["completion"] == TOKENIZER.decode(greedy(model, prompt, 5))
    assert call(server.url + "/generate", {"prompt": prompt, "max_new_tokens": 5})[0] == 200
    status, body, _ = call(server.url + "/generate", {"prompt": prompt, "max_new_tokens": 6})
    assert status == 400 and "max_new_tokens" in body["error"] and "at most 5" in body["error"]


def test_sampling_is_deterministic_for_a_seed(server, model):
    payload = {"prompt": "47+85=", "temperature": 1.0, "seed": 3}
    first, second = (call(server.url + "/generate", payload)[1] for _ in range(2))
    assert first["completion"] == second["completion"] and first["tokens"] == second["tokens"]
    ids = generate_batch(model, [TOKENIZER.encode_prompt("47+85=")], 64, eos_id=TOKENIZER.eos_id, temperature=1.0,
                         generator=torch.Generator().manual_seed(3))[0]
    assert first["completion"] == TOKENIZER.decode(ids) and first["tokens"] == len(ids)
    others = {call(server.url + "/generate", {**payload, "seed": seed})[1]["completion"] for seed in (4, 5, 6)}
    assert others - {first["completion"]}, "other seeds should give other samples"
    # temperature 0 ignores the seed
    greedy_text = TOKENIZER.decode(greedy(model, "47+85="))
    assert call(server.url + "/generate", {"prompt": "47+85=", "temperature": 0, "seed": 9})[1]["completion"] \
        == greedy_text


# ---------------------------------------------------------------- what it refuses
OK = {"prompt": "47+85="}
BAD_REQUESTS = [
    # (id, call keyword arguments, text the error message must contain)
    ("invalid JSON", dict(raw=b'{"prompt": '), "not valid JSON"),
    ("empty body", dict(raw=b""), "body is empty"),
    ("not UTF-8", dict(raw=b'\xff\xfe{"prompt": "1+1="}'), "UTF-8"),
    ("nested too deeply", dict(raw=b"[" * 50_000), "nested too deeply"),
    ("array", dict(payload=[OK]), "JSON object"),
    ("string", dict(payload="47+85="), "JSON object"),
    ("prompt missing", dict(payload={}), "'prompt' is missing"),
    ("prompt a number", dict(payload={"prompt": 47}), "prompt must be a string"),
    ("prompt null", dict(payload={"prompt": None}), "prompt must be a string"),
    ("prompt unknown character", dict(payload={"prompt": "47*85="}), "prompt contains the character '*'"),
    ("prompt letters", dict(payload={"prompt": "what is 2+2?"}), "prompt contains the character 'w'"),
    ("prompt longer than the context", dict(payload={"prompt": "1" * (BLOCK - 1)}), "prompt is too long"),
    ("max_new_tokens zero", dict(payload={**OK, "max_new_tokens": 0}), "max_new_tokens"),
    ("max_new_tokens negative", dict(payload={**OK, "max_new_tokens": -3}), "max_new_tokens"),
    ("max_new_tokens string", dict(payload={**OK, "max_new_tokens": "64"}), "max_new_tokens"),
    ("max_new_tokens float", dict(payload={**OK, "max_new_tokens": 1.5}), "max_new_tokens"),
    ("max_new_tokens bool", dict(payload={**OK, "max_new_tokens": True}), "max_new_tokens"),
    ("max_new_tokens too large", dict(payload={**OK, "max_new_tokens": 1000}), "max_new_tokens=1000 is too large"),
    ("max_new_tokens infinite", dict(raw=b'{"prompt": "1+1=", "max_new_tokens": 1e999}'), "max_new_tokens"),
    ("temperature negative", dict(payload={**OK, "temperature": -0.5}), "temperature"),
    ("temperature string", dict(payload={**OK, "temperature": "hot"}), "temperature"),
    ("temperature bool", dict(payload={**OK, "temperature": True}), "temperature"),
    ("temperature NaN", dict(raw=b'{"prompt": "1+1=", "temperature": NaN}'), "temperature"),
    ("temperature infinite", dict(raw=b'{"prompt": "1+1=", "temperature": Infinity}'), "temperature"),
    ("seed negative", dict(payload={**OK, "temperature": 1, "seed": -1}), "seed"),
    ("seed float", dict(payload={**OK, "temperature": 1, "seed": 1.5}), "seed"),
    ("seed too large", dict(payload={**OK, "temperature": 1, "seed": MAX_SEED + 1}), "seed"),
    ("unknown field", dict(payload={**OK, "temprature": 1.0}), "unknown field 'temprature'"),
    ("body too large", dict(raw=b" " * (MAX_BODY_BYTES + 1)), "too large"),
    ("Content-Length too large", dict(payload=OK, headers={"Content-Length": str(10 ** 9)}), "too large"),
    ("Content-Length not a number", dict(payload=OK, headers={"Content-Length": "abc"}), "Content-Length"),
    ("chunked body", dict(raw=iter([json.dumps(OK).encode()])), "Content-Length"),
    ("Content-Type text", dict(payload=OK, headers={"Content-Type": "text/plain"}), "Content-Type"),
    ("Content-Type form (urllib's default)",
     dict(payload=OK, headers={"Content-Type": "application/x-www-form-urlencoded"}), "Content-Type"),
]


@pytest.mark.parametrize("kwargs, fragment", [case[1:] for case in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_malformed_requests_get_400_naming_the_problem(server, kwargs, fragment):
    status, body, _ = call(server.url + "/generate", **kwargs)
    assert status == 400
    assert set(body) == {"error"} and fragment in body["error"], body


def test_unknown_paths_and_wrong_methods(server):
    status, body, _ = call(server.url + "/predict", OK)
    assert status == 404 and "'/predict'" in body["error"] and "POST /generate" in body["error"]
    assert call(server.url + "/")[0] == 404
    status, body, headers = call(server.url + "/generate")
    assert status == 405 and "POST" in body["error"] and headers["Allow"] == "POST"
    status, body, headers = call(server.url + "/health", OK)
    assert status == 405 and "GET" in body["error"] and headers["Allow"] == "GET"
    assert call(server.url + "/generate", OK, method="PUT")[0] == 405
    status, body, _ = call(server.url + "/health", method="BREW")
    assert status == 501 and "BREW" in body["error"]
    assert call(server.url + "/health", method="HEAD")[:2] == (200, None)     # headers only


def test_internal_errors_get_500_without_traceback_and_the_server_keeps_serving(server, model, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(server, "complete", broken)
    status, body, _ = call(server.url + "/generate", OK)
    assert status == 500 and "internal server error" in body["error"]
    assert "secret" not in body["error"] and "Traceback" not in body["error"]
    assert call(server.url + "/health")[0] == 200
    monkeypatch.undo()
    status, body, _ = call(server.url + "/generate", OK)
    assert status == 200 and body["completion"] == TOKENIZER.decode(greedy(model, "47+85="))


def test_server_keeps_answering_after_bad_requests(server, model):
    for kwargs, _ in [case[1:] for case in BAD_REQUESTS[::3]]:
        assert call(server.url + "/generate", **kwargs)[0] == 400
    assert call(server.url + "/nowhere")[0] == 404
    assert call(server.url + "/health")[0] == 200
    status, body, _ = call(server.url + "/generate", OK)
    assert status == 200 and body["completion"] == TOKENIZER.decode(greedy(model, "47+85="))


def test_concurrent_requests_are_all_answered(server, model):
    expected = TOKENIZER.decode(greedy(model, "47+85="))
    start = threading.Barrier(20)

    def one(i: int):
        start.wait(timeout=20)
        if i % 5 == 4:                          # a few bad requests among them
            return call(server.url + "/generate", raw=b"{oops")
        return call(server.url + "/generate", OK)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    good = [r for i, r in enumerate(results) if i % 5 != 4]
    assert all(status == 200 for status, _, _ in good)
    assert {body["completion"] for _, body, _ in good} == {expected}
    assert all(status == 400 for i, (status, _, _) in enumerate(results) if i % 5 == 4)


# ---------------------------------------------------------------- starting it
def test_make_server_refuses_bad_arguments(tmp_path, checkpoint):
    with pytest.raises(ValueError, match="checkpoint .* is not a file"):
        make_server(tmp_path / "missing.pt", port=0)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        make_server(tmp_path / "junk.pt", port=0)
    with pytest.raises(ValueError, match="port"):
        make_server(checkpoint, port=-1)
    with pytest.raises(ValueError, match="vocab_size"):
        make_server(GPT.from_seed(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8), 0), port=0)


def test_serves_a_model_object(model):
    with serve(model, port=0, quiet=True) as server:
        status, body, _ = call(server.url + "/health")
        assert status == 200 and body["model"]["checkpoint"] is None
        assert call(server.url + "/generate", OK)[1]["completion"] == TOKENIZER.decode(greedy(model, "47+85="))
    assert not server.thread.is_alive()


def test_cli_reports_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(tmp_path / "missing.pt"), "--port", "0"])
    assert exit_info.value.code == 2 and "is not a file" in capsys.readouterr().err


def test_cli_serves_a_checkpoint(checkpoint, model):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(aiterms.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "aiterms.serve", "--checkpoint", str(checkpoint), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        try:
            first = lines.get(timeout=20)
        except queue.Empty:
            pytest.fail("the server printed no URL within 20 s")
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert match, first
        url = match.group(0)
        status, body, _ = call(url + "/health")
        assert status == 200 and body["model"]["checkpoint"] == "tiny.pt"
        status, body, _ = call(url + "/generate", {"prompt": "12+34=", "max_new_tokens": 10})
        assert status == 200 and body["completion"] == TOKENIZER.decode(greedy(model, "12+34=", 10))
        assert call(url + "/generate", {"prompt": "12 plus 34"})[0] == 400
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "POST /generate" in err                     # requests are logged (on stderr)
