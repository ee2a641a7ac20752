"""One SavedModel version folder served by KServe's Python model server, on loopback.

    .venv-serving/bin/python kserve_server.py --model-dir DIR --name NAME [--port 0]
        [--port-file FILE] [--signature serving_default] [--host 127.0.0.1] [--parent-pid PID]

Runs inside the serving environment (``make serving-env``: kserve 0.15.2 with TensorFlow
2.16.2, ``requirements/serving.txt``), never in kubetfx's own: it imports only kserve,
tensorflow, numpy and the standard library. The model is a ``kserve.Model`` subclass that
loads the SavedModel once and answers both REST protocols KServe's server speaks:

- V1 (TF Serving's row format): ``POST /v1/models/NAME:predict`` with
  ``{"instances": [{"b64": "<serialized tf.Example, base64>"}, ...]}`` (an instance may also
  be ``{"<input name>": {"b64": ...}}``, or the columnar ``{"inputs": [...]}``); the answer
  is ``{"predictions": [...]}``, one entry per instance: a dict of the signature's outputs,
  or the value itself when the signature has a single output (as TF Serving answers).
- V2 (open inference protocol): ``POST /v2/models/NAME/infer`` with one ``BYTES`` input of
  shape ``[n]`` whose ``data`` are base64 text, marked ``"parameters": {"content_type":
  "base64"}`` (JSON cannot carry raw bytes); unmarked text is taken as UTF-8 bytes. The
  answer has one output per signature output (name, shape, datatype, flat data).

The listening socket is bound before the server starts (``--port 0`` picks a free port), and
its port written to ``--port-file`` (atomically) and printed, so the caller never races for a
port. Readiness: ``GET /v2/health/ready`` and ``GET /v1/models/NAME``. SIGTERM or SIGINT
stops the server (uvicorn's graceful shutdown); so does the end of ``--parent-pid`` (the
caller killed without stopping it: the server is reparented and notices within a second).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import logging
import os
import socket
import sys
from typing import Any

import numpy as np

B64_KEY = "b64"
BASE64_CONTENT = "base64"


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="a SavedModel folder (one version)")
    parser.add_argument("--name", required=True, help="the model's name in the URLs")
    parser.add_argument("--port", type=int, default=0, help="HTTP port; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port-file", default="", help="write the bound port here")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--workers-threads", type=int, default=4, help="threads running the model")
    parser.add_argument(
        "--parent-pid", type=int, default=0, help="stop when this process is no longer the parent"
    )
    return parser.parse_args(argv)


def _b64(value: Any) -> bytes:
    """One serialized example from a V1 instance value: ``{"b64": ...}`` or plain text."""
    if isinstance(value, dict) and B64_KEY in value:
        try:
            return base64.b64decode(value[B64_KEY], validate=True)
        except binascii.Error as err:
            raise ValueError(f"not base64 ({err})") from err
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f'expected {{"b64": "..."}} or a string, got {type(value).__name__}')


def _rows(outputs: dict[str, np.ndarray]) -> list[Any]:
    """TF Serving's row format: one entry per instance."""
    names = sorted(outputs)
    count = len(next(iter(outputs.values())))
    if len(names) == 1:
        return [_plain(outputs[names[0]][i]) for i in range(count)]
    return [{name: _plain(outputs[name][i]) for name in names} for i in range(count)]


def _plain(value: Any) -> Any:
    array = np.asarray(value)
    if array.dtype.kind in ("S", "O"):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.ravel()]
    return array.tolist()


def _v2_datatype(array: np.ndarray) -> str:
    kinds = {
        np.dtype(np.float32): "FP32",
        np.dtype(np.float64): "FP64",
        np.dtype(np.int32): "INT32",
        np.dtype(np.int64): "INT64",
        np.dtype(np.bool_): "BOOL",
        np.dtype(np.float16): "FP16",
    }
    if array.dtype in kinds:
        return kinds[array.dtype]
    if array.dtype.kind in ("S", "O", "U"):
        return "BYTES"
    raise ValueError(f"output dtype {array.dtype} has no V2 datatype")


def build_model(model_dir: str, name: str, signature: str) -> Any:
    """The ``kserve.Model`` serving ``model_dir`` (loaded by ``load()``)."""
    import kserve  # type: ignore[import-not-found]  # the serving environment's, not kubetfx's
    import tensorflow as tf
    from kserve.errors import InvalidInput  # type: ignore[import-not-found]

    class SavedModel(kserve.Model):
        """A SavedModel whose signature takes one string tensor of serialized tf.Example."""

        def __init__(self) -> None:
            super().__init__(name)
            self.model_dir = model_dir
            self.signature = signature
            self.input_name = ""
            self._fn: Any = None
            self._loaded: Any = None

        def load(self) -> bool:
            self._loaded = tf.saved_model.load(self.model_dir)
            fn = self._loaded.signatures.get(self.signature)
            if fn is None:
                raise RuntimeError(
                    f"{self.model_dir}: no {self.signature!r} signature "
                    f"(it has: {', '.join(sorted(self._loaded.signatures)) or 'none'})"
                )
            _, inputs = fn.structured_input_signature
            if len(inputs) != 1 or next(iter(inputs.values())).dtype != tf.string:
                raise RuntimeError(
                    f"{self.model_dir}: signature {self.signature!r} takes {sorted(inputs)}; this server"
                    " serves signatures that take one string tensor of serialized tf.Example"
                )
            self.input_name = next(iter(inputs))
            self._fn = fn
            self.ready = True
            return self.ready

        def _run(self, examples: list[bytes]) -> dict[str, np.ndarray]:
            result = self._fn(**{self.input_name: tf.constant(examples, dtype=tf.string)})
            return {key: value.numpy() for key, value in result.items()}

        def _v1_examples(self, payload: dict[str, Any]) -> list[bytes]:
            if "instances" in payload:
                rows = payload["instances"]
            elif "inputs" in payload:
                rows = payload["inputs"]
                if isinstance(rows, dict):
                    rows = rows.get(self.input_name, next(iter(rows.values()), []))
            else:
                raise InvalidInput('expected "instances" (or "inputs") in the request')
            if not isinstance(rows, list) or not rows:
                raise InvalidInput('"instances" must be a non-empty list')
            examples = []
            for i, row in enumerate(rows):
                if isinstance(row, dict) and B64_KEY not in row:
                    row = row.get(self.input_name, next(iter(row.values()), None))
                try:
                    examples.append(_b64(row))
                except (ValueError, TypeError) as err:
                    raise InvalidInput(f"instance {i}: {err}") from err
            return examples

        def _v2_examples(self, request: Any) -> list[bytes]:
            inputs = request.inputs
            if len(inputs) != 1:
                raise InvalidInput(f"expected one input ({self.input_name}), got {len(inputs)}")
            tensor = inputs[0]
            if tensor.datatype != "BYTES":
                raise InvalidInput(f"input {tensor.name}: datatype {tensor.datatype}, expected BYTES")
            encoded = (tensor.parameters or {}).get("content_type") == BASE64_CONTENT
            values = tensor.data if tensor.data is not None else list(tensor.as_numpy().ravel())
            examples = []
            for i, value in enumerate(values):
                raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
                try:
                    examples.append(base64.b64decode(raw, validate=True) if encoded else raw)
                except ValueError as err:
                    raise InvalidInput(f"input {tensor.name}[{i}]: not base64 ({err})") from err
            return examples

        async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            v2 = isinstance(payload, kserve.InferRequest)
            examples = self._v2_examples(payload) if v2 else self._v1_examples(payload)
            loop = asyncio.get_running_loop()
            try:
                outputs = await loop.run_in_executor(None, self._run, examples)
            except tf.errors.InvalidArgumentError as err:
                raise InvalidInput(str(err).strip().splitlines()[0]) from err
            except UnicodeDecodeError as err:
                # TensorFlow fails to format its own parse error when the bad record is
                # not UTF-8: still the request's fault, not the server's.
                raise InvalidInput(f"the examples are not serialized tf.Example ({err})") from err
            if not v2:
                return {"predictions": _rows(outputs)}
            result = []
            for key in sorted(outputs):
                array = np.asarray(outputs[key])
                out = kserve.InferOutput(name=key, shape=list(array.shape), datatype=_v2_datatype(array))
                out.set_data_from_numpy(array, binary_data=False)
                result.append(out)
            return kserve.InferResponse(
                response_id=payload.id or "", model_name=self.name, infer_outputs=result
            )

    return SavedModel()


def serve(args: argparse.Namespace) -> None:
    """Load the model, bind the socket, write the port, and serve until signalled."""
    import concurrent.futures

    import kserve
    from kserve.protocol.rest.server import RESTServer  # type: ignore[import-not-found]

    model = build_model(args.model_dir, args.name, args.signature)
    model.load()
    server = kserve.ModelServer(
        http_port=args.port, enable_grpc=False, enable_latency_logging=False, grace_period=5
    )
    server.register_model(model)
    # One line per request (kserve's trace logger, uvicorn's access log) would flood the
    # log under load and cost the latency being measured.
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    rest = RESTServer(
        "kserve.model_server:app",
        server.dataplane,
        server.model_repository_extension,
        port,
        grace_period=5,
    )
    rest.config.host = args.host
    rest.create_application()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as out:
            out.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"kserve_server: {args.name} from {args.model_dir} on http://{args.host}:{port}", flush=True)

    async def orphan_watch() -> None:
        # A caller killed without stopping the server (SIGKILL) must not leave it running.
        while os.getppid() == args.parent_pid:
            await asyncio.sleep(1.0)
        print(f"kserve_server: parent {args.parent_pid} is gone; stopping", flush=True)
        rest._server.should_exit = True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=args.workers_threads))
        watch = asyncio.create_task(orphan_watch()) if args.parent_pid else None
        await rest._server.serve(sockets=[sock])
        if watch is not None:
            watch.cancel()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments (before kserve parses the command line) and serve."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    # kserve.model_server parses sys.argv when imported: give it only the program name.
    sys.argv = sys.argv[:1]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    serve(args)


if __name__ == "__main__":
    main()
