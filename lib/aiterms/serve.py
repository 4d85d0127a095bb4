"""Deployment: serve a checkpoint over HTTP, so that other programs can use the model.

Deployment is the last stage of the training pipeline (collection -> processing -> pretraining -> SFT -> evaluation ->
export -> **deployment**). Once it is trained, evaluated and exported, the model has to be made available to the
world: here, a small web server that answers JSON requests. Hosted models are used the same way, with more around them
(authentication, rate limits, batching of many users' requests on accelerators, streaming of tokens). Start it with::

    python -m aiterms.serve --checkpoint model.pt                    # prints http://127.0.0.1:8000

Endpoints (JSON in, JSON out):

``GET /health``
    ``200 {"status": "ok", "model": {"checkpoint", "config", "metadata"}, "parameters": N}``: the server is up, and
    which model it serves (its size, and the metadata saved with it by :meth:`aiterms.transformer.GPT.save`).
``POST /generate``
    body ``{"prompt": "47+85=", "max_new_tokens": 64, "temperature": 0, "seed": 0}``, only ``prompt`` required:

    - ``prompt``: text in the tokenizer's characters (:mod:`aiterms.tokenizer`), e.g. an arithmetic prompt; the model
      reads ``<bos> prompt <sep>``, so at most ``block_size - 2`` characters;
    - ``max_new_tokens``: at most this many tokens (default 64, or fewer if the context has less room);
      ``len(prompt) + 2 + max_new_tokens - 1 <= block_size``;
    - ``temperature``: 0 (default) = greedy decoding; ``> 0`` samples ``y_t ~ softmax(logits_t / temperature)``;
    - ``seed``: the sampler's seed (default 0), so the same request always gets the same answer.

    -> ``200 {"prompt", "completion", "answer", "tokens", "finish_reason", "seconds"}``: the generated text (special
    tokens dropped), :func:`aiterms.arithmetic.extract_answer` of it (``null`` when there is none), the number of
    generated tokens (``<eos>`` included), ``"eos"`` or ``"length"`` (why it stopped), and the generation time.

Example::

    $ curl -s http://127.0.0.1:8000/generate -H 'Content-Type: application/json' -d '{"prompt": "47+85="}'
    {"prompt": "47+85=", "completion": "7+5+0=12|4+8+1=13|=132", "answer": 132, "tokens": 23,
     "finish_reason": "eos", "seconds": 0.004}

**Errors** are JSON too, ``{"error": "<message>"}``, and never stop the server: a malformed request (body not JSON, not
an object, larger than 64 KiB or without ``Content-Type: application/json``; a missing or invalid field, named in
the message; an unknown field) gets 400, an unknown path 404, a wrong method 405 (with an ``Allow`` header), and an
unexpected failure 500, without a traceback (the server logs it).

**Concurrency**: :class:`http.server.ThreadingHTTPServer` answers every connection in its own thread; the model runs
one request at a time under a lock (a tiny model answers in milliseconds; large servers instead batch the requests
that arrive together). Every request has its own random generator, so concurrent requests do not change each other's
samples.

**Security**: the server binds to 127.0.0.1 by default, so only programs on this machine can reach it. It has no
authentication, no TLS and no rate limit: ``--host 0.0.0.0`` exposes the model to the whole network.

From Python (tests, notebooks), :func:`serve` starts the server in a background thread and returns it::

    server = serve("model.pt", port=0)       # port 0: any free port; server.url says which
    ...                                      # urllib.request.urlopen(server.url + "/health")
    server.stop()
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import math
import re
import socket
import socketserver
import sys
import threading
import time
import traceback
from dataclasses import asdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import torch

from aiterms.arithmetic import extract_answer
from aiterms.tokenizer import TOKENIZER
from aiterms.transformer import GPT, generate_batch

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: ``max_new_tokens`` when a request does not say (capped by the room the context leaves after the prompt).
DEFAULT_MAX_NEW_TOKENS = 64
#: The largest request body accepted, in bytes.
MAX_BODY_BYTES = 64 * 1024
#: Seeds are ``0 .. MAX_SEED`` (what ``torch.Generator.manual_seed`` takes without wrapping around).
MAX_SEED = 2 ** 63 - 1
#: The fields of a ``POST /generate`` body.
GENERATE_FIELDS = ("prompt", "max_new_tokens", "temperature", "seed")
#: path -> {method: handler method name}
ROUTES = {"/health": {"GET": "_health"}, "/generate": {"POST": "_generate"}}

_EXAMPLE = '{"prompt": "47+85="}'


class RequestError(Exception):
    """A request the server refuses: the HTTP ``status``, a message for the client and extra response headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class GenerateRequest(NamedTuple):
    """A checked ``POST /generate`` body; ``ids`` = ``<bos> prompt <sep>``."""

    prompt: str
    ids: list[int]
    max_new_tokens: int
    temperature: float
    seed: int


def _show(value: Any, limit: int = 60) -> str:
    """``value`` as the client wrote it (JSON), shortened: for error messages."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def parse_generate_request(body: Any, block_size: int) -> GenerateRequest:
    """Check a decoded ``POST /generate`` body against a model with context ``block_size``.

    Raises:
        RequestError: status 400, with a message naming the offending field.
    """
    if not isinstance(body, dict):
        raise RequestError(400, f"the body must be a JSON object like {_EXAMPLE}, got {_json_type(body)}")
    unknown = [name for name in body if name not in GENERATE_FIELDS]
    if unknown:
        raise RequestError(400, f"unknown field {', '.join(map(repr, unknown))}; "
                                f"/generate accepts only {', '.join(GENERATE_FIELDS)}")
    if "prompt" not in body:
        raise RequestError(400, f"the field 'prompt' is missing: send a JSON object like {_EXAMPLE}")
    prompt = body["prompt"]
    if not isinstance(prompt, str):
        raise RequestError(400, f"prompt must be a string like \"47+85=\", got {_json_type(prompt)}: {_show(prompt)}")
    for i, ch in enumerate(prompt):
        if ch not in TOKENIZER.stoi:
            raise RequestError(400, f"prompt contains the character {ch!r} at position {i}, which the model's "
                                    f"tokenizer does not know; it knows only {TOKENIZER.characters!r}")
    ids = TOKENIZER.encode_prompt(prompt)
    if len(ids) > block_size:
        raise RequestError(400, f"prompt is too long: its {len(prompt)} characters plus <bos> and <sep> make "
                                f"{len(ids)} tokens, more than the model's context of {block_size}; "
                                f"at most {block_size - 2} characters")
    room = block_size - len(ids) + 1          # the last new token need not be fed back
    max_new_tokens = body.get("max_new_tokens")
    if max_new_tokens is None:
        max_new_tokens = min(DEFAULT_MAX_NEW_TOKENS, room)
    elif isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise RequestError(400, f"max_new_tokens must be a positive integer, got {_show(max_new_tokens)}")
    elif max_new_tokens > room:
        raise RequestError(400, f"max_new_tokens={max_new_tokens} is too large: the prompt takes {len(ids)} of the "
                                f"model's context of {block_size} tokens, which leaves room for at most {room}")
    temperature = body.get("temperature")
    if temperature is None:
        temperature = 0.0
    elif (isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature)
          or temperature < 0):
        raise RequestError(400, f"temperature must be a number >= 0 (0 = greedy), got {_show(temperature)}")
    seed = body.get("seed")
    if seed is None:
        seed = 0
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise RequestError(400, f"seed must be an integer in 0..{MAX_SEED}, got {_show(seed)}")
    return GenerateRequest(prompt, ids, max_new_tokens, float(temperature), seed)


class ModelServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` that serves one :class:`~aiterms.transformer.GPT` (see the module docstring).

    ``model``, ``lock`` (held while the model runs), ``quiet`` (no request log), ``url``, ``thread`` (the thread
    running :meth:`serve_forever` when started by :func:`serve`). ``with serve(...) as server:`` stops it at the end.
    """

    daemon_threads = True     # a request still running does not keep the process alive
    request_queue_size = 128  # connections waiting to be accepted (socketserver's default of 5 drops bursts)

    def __init__(self, model: GPT, address: tuple[str, int], checkpoint: str | None = None, quiet: bool = False):
        self.model, self.quiet = model, quiet
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.info = {"status": "ok",
                     "model": {"checkpoint": checkpoint, "config": asdict(model.config), "metadata": model.metadata},
                     "parameters": model.num_parameters()}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also looks up the host's name (socket.getfqdn), which can take seconds offline
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def health(self) -> dict[str, Any]:
        """The body of ``GET /health``."""
        return self.info

    def complete(self, ids: list[int], max_new_tokens: int, temperature: float, seed: int) -> tuple[list[int], float]:
        """Continue ``ids`` (greedy for temperature 0, else sampled with a generator seeded by ``seed``) until
        ``<eos>`` or ``max_new_tokens``; return the generated ids and the seconds the model took."""
        generator = torch.Generator().manual_seed(seed) if temperature > 0 else None
        with self.lock:
            start = time.perf_counter()
            out = generate_batch(self.model, [ids], max_new_tokens, eos_id=TOKENIZER.eos_id, temperature=temperature,
                                 generator=generator)[0]
            return out, time.perf_counter() - start

    def stop(self) -> None:
        """Stop serving and close the socket (waits for :meth:`serve_forever` to return)."""
        if self.thread is not None and self.thread.is_alive():
            self.shutdown()
            self.thread.join()
        self.server_close()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class RequestHandler(BaseHTTPRequestHandler):
    """Answers one connection (HTTP/1.0: one request) with JSON; see the module docstring for the endpoints."""

    server: ModelServer
    server_version = "aiterms-serve/1"
    timeout = 10              # seconds a client may stall mid-request before its connection is dropped
    _body_pending = False     # the request came with a body that was not read

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _dispatch(self) -> None:
        self._body_pending = ("Transfer-Encoding" in self.headers
                              or self.headers.get("Content-Length", "0").strip() != "0")
        headers: dict[str, str] = {}
        try:
            path = urlsplit(self.path).path
            methods = ROUTES.get(path)
            if methods is None:
                endpoints = ", ".join(f"{m} {p}" for p, ms in ROUTES.items() for m in ms)
                raise RequestError(404, f"unknown path {path!r}; the endpoints are {endpoints}")
            method = "GET" if self.command == "HEAD" else self.command
            if method not in methods:
                raise RequestError(405, f"{path} accepts only {' or '.join(methods)}, not {self.command}",
                                   {"Allow": ", ".join(methods)})
            status, payload = getattr(self, methods[method])()
        except RequestError as e:
            status, payload, headers = e.status, {"error": e.message}, e.headers
        except Exception:
            if not self.server.quiet:
                self.log_error("internal error on %r:\n%s", self.requestline, traceback.format_exc())
            status, payload = 500, {"error": "internal server error; the server's log has the details"}
        self._send_json(status, payload, headers)

    # ------------------------------------------------------------ endpoints
    def _health(self) -> tuple[int, dict[str, Any]]:
        return 200, self.server.health()

    def _generate(self) -> tuple[int, dict[str, Any]]:
        request = parse_generate_request(self._read_json(), self.server.model.config.block_size)
        ids, seconds = self.server.complete(request.ids, request.max_new_tokens, request.temperature, request.seed)
        completion = TOKENIZER.decode(ids)
        return 200, {"prompt": request.prompt, "completion": completion, "answer": extract_answer(completion),
                     "tokens": len(ids), "finish_reason": "eos" if ids[-1:] == [TOKENIZER.eos_id] else "length",
                     "seconds": round(seconds, 6)}

    # ------------------------------------------------------------ reading and writing
    def _read_json(self) -> Any:
        """The request body, decoded; ``RequestError`` (400) for everything that is not a small JSON document."""
        if "Transfer-Encoding" in self.headers:
            raise RequestError(400, f"Transfer-Encoding {self.headers['Transfer-Encoding']!r} is not supported: "
                                    f"send the body with a Content-Length header")
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(400, "the Content-Length header is missing: send a JSON body with its length")
        if not re.fullmatch(r"\s*\d+\s*", length):
            raise RequestError(400, f"the Content-Length header must be a non-negative integer, got {length!r}")
        length = int(length)
        if length > MAX_BODY_BYTES:
            raise RequestError(400, f"the request body is too large: Content-Length is {length} bytes, "
                                    f"the limit is {MAX_BODY_BYTES}")
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise RequestError(400, f"the body stopped arriving before its Content-Length of {length} bytes") from None
        if len(body) < length:
            raise RequestError(400, f"the body has {len(body)} bytes, fewer than its Content-Length of {length}")
        self._body_pending = False
        content_type = self.headers.get("Content-Type")
        if content_type is None or self.headers.get_content_type() != "application/json":
            raise RequestError(400, f"the Content-Type header must be application/json, got "
                                    f"{'none' if content_type is None else repr(content_type)} "
                                    f"(curl: -H 'Content-Type: application/json')")
        if not body.strip():
            raise RequestError(400, f"the body is empty: send a JSON object like {_EXAMPLE}")
        try:
            return json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(400, "the body is not UTF-8 text: send JSON encoded as UTF-8") from None
        except json.JSONDecodeError as e:
            raise RequestError(400, f"the body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
                               ) from None
        except RecursionError:
            raise RequestError(400, "the body is not valid JSON for this server: nested too deeply") from None

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = (json.dumps(payload, default=str) + "\n").encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:       # the client went away: nothing to answer
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors that :class:`BaseHTTPRequestHandler` detects itself (bad request line, unsupported method, ...),
        as JSON like all others."""
        self.close_connection = True
        self._send_json(code, {"error": message or HTTPStatus(code).phrase})

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._body_pending:
                self._linger()

    def _linger(self, max_bytes: int = 1 << 20, seconds: float = 1.0) -> None:
        """Read and drop what the client is still sending of a body we refused, so that closing the socket does not
        reset the connection before the client has read our answer (a "lingering close", as Apache does)."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(seconds)
            received = 0
            while received < max_bytes:
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)


# ---------------------------------------------------------------- starting a server
def make_server(checkpoint: str | Path | GPT, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                quiet: bool = False) -> ModelServer:
    """A :class:`ModelServer` for ``checkpoint`` (a path written by :meth:`GPT.save`, or a model), bound to
    ``(host, port)`` but not started (``server.serve_forever()`` runs it in the calling thread).

    Raises:
        ValueError: the checkpoint is not a file, cannot be loaded or does not use the course's tokenizer; a bad
            ``host`` or ``port``.
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    if isinstance(checkpoint, GPT):
        model, name = checkpoint, None
    else:
        if not isinstance(checkpoint, (str, Path)):
            raise ValueError(f"checkpoint must be a path or a GPT, got {type(checkpoint).__name__}")
        path = Path(checkpoint)
        if not path.is_file():
            raise ValueError(f"checkpoint {str(checkpoint)!r} is not a file")
        try:
            model = GPT.load(path)
        except ValueError:
            raise
        except Exception as e:
            raise ValueError(f"checkpoint {str(checkpoint)!r} could not be loaded: {type(e).__name__}: {e}") from e
        name = path.name
    if model.config.vocab_size != TOKENIZER.vocab_size:
        raise ValueError(f"checkpoint has vocab_size={model.config.vocab_size}, but the course's tokenizer has "
                         f"{TOKENIZER.vocab_size} tokens")
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in 0..65535 (0 = any free port), got {port!r}")
    return ModelServer(model, (host, port), checkpoint=name, quiet=quiet)


def serve(checkpoint: str | Path | GPT, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          quiet: bool = False) -> ModelServer:
    """Start serving ``checkpoint`` at ``http://host:port`` in a daemon thread and return the running server.

    ``port=0`` takes any free port (``server.url`` tells which); ``quiet`` silences the request log.
    ``server.stop()`` (or ``with serve(...) as server:``) shuts it down. Errors as :func:`make_server`.
    """
    server = make_server(checkpoint, host, port, quiet=quiet)
    server.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                     name=f"aiterms.serve {server.url}", daemon=True)
    server.thread.start()
    return server


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    """``python -m aiterms.serve --checkpoint PATH [--host 127.0.0.1] [--port 8000] [--quiet]``; Ctrl-C stops."""
    parser = argparse.ArgumentParser(prog="python -m aiterms.serve",
                                     description="Serve a checkpoint of the course's GPT over HTTP: "
                                                 "GET /health, POST /generate (JSON).")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by GPT.save")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: reachable from this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.checkpoint, args.host, args.port, quiet=args.quiet)
    except ValueError as e:
        parser.error(str(e))
    except OSError as e:
        parser.error(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}")
    torch.set_num_threads(1)      # requests run one at a time, and a tiny model gains nothing from more threads
    if not _is_loopback(args.host):
        print(f"warning: listening on {args.host}: other machines can reach this server, which has no "
              f"authentication", file=sys.stderr)
    print(f"Serving {args.checkpoint} ({server.info['parameters']:,} parameters) at {server.url} "
          f"(GET /health, POST /generate); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
