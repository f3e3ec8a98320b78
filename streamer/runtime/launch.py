"""Starting one worker process, with its configuration on a private channel.

A worker is ``python -m streamer.runtime.child SPEC --config-fd N --parent-pid P
[--status-fd M]``. Its whole configuration (the :class:`AppConfig`, secret client settings
included, and its :class:`WorkerOptions`) travels as JSON through an inherited pipe: the
launcher writes it to the pipe's write end, which only it holds, and closes it; the child
reads the read end, inherited as fd ``N`` (``pass_fds``), to its end. Nothing secret is on
any command line, where ``ps`` and ``/proc/<pid>/cmdline`` would show it to every user.

``--parent-pid`` is the launcher's pid: the child arms Linux's parent-death signal and then
checks that its parent is still that process (see :mod:`streamer.runtime.child`). So launch
workers from a thread that lives as long as they should (the main thread): Linux signals
the child when the *thread* that started it ends.

``--status-fd``, when given, is the write end of a pipe on which a failing worker writes
one line, the reason it failed; the supervisor uses it to tell repeated failures apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from streamer.errors import ConfigError
from streamer.runtime.config import AppConfig, ErrorPolicy, Guarantee

EXIT_PERMANENT = 3
"""A worker's exit code when restarting it cannot help: its configuration or topology is
wrong, or the cluster refused it (authentication, TLS, a missing ACL)."""


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker process runs, besides its :class:`AppConfig`.

    ``http_port`` starts the query server (:mod:`streamer.query`) on ``http_address``;
    ``advertised_url`` is where other members reach it (see :func:`worker_url`) and
    ``http_token`` the bearer token it requires (a secret: it travels only on the config
    pipe and never shows in a repr).
    """

    group_protocol: str = "consumer"
    metrics_port: int | None = None
    metrics_address: str = "0.0.0.0"
    verbose: bool = False
    http_port: int | None = None
    http_address: str = "127.0.0.1"
    advertised_url: str | None = None
    http_token: str | None = field(default=None, repr=False)


def worker_url(advertised: str | None, address: str, port: int, offset: int) -> str:
    """The URL worker number ``offset`` of a host advertises for its query server.

    Without ``advertised``, ``http://<address>:<port>`` (the host's name when the server
    binds every address). With it, the URL's port plus ``offset`` (or ``port`` when the URL
    has none): ``http://10.0.0.5:8080`` is worker 0's, ``http://10.0.0.5:8081`` worker 1's.
    """
    if advertised is None:
        host = socket.getfqdn() if address in ("", "0.0.0.0", "::") else address
        return f"http://{_bracketed(host)}:{port}"
    parts = urlsplit(advertised)
    try:
        given_port = parts.port
    except ValueError:
        given_port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or given_port == -1:
        msg = f"advertised URL must be http(s)://host[:port][/path], got {advertised!r}"
        raise ConfigError(msg)
    own_port = port if given_port is None else given_port + offset
    netloc = f"{_bracketed(parts.hostname)}:{own_port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def config_to_json(config: AppConfig) -> str:
    """``config`` as JSON; client settings must be strings, numbers or booleans."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (Guarantee, ErrorPolicy)):
            value = value.value
        elif f.name.endswith("_config"):
            value = dict(value)
            for key, item in value.items():
                if not isinstance(item, (str, int, float, bool)):
                    msg = (
                        f"{f.name}[{key!r}] cannot be sent to a worker process: only "
                        "strings, numbers and booleans can"
                    )
                    raise ConfigError(msg)
        data[f.name] = value
    return json.dumps(data)


def config_from_json(text: str | bytes) -> AppConfig:
    data = json.loads(text)
    data["state_dir"] = Path(data["state_dir"])
    data["guarantee"] = Guarantee(data["guarantee"])
    data["error_policy"] = ErrorPolicy(data["error_policy"])
    return AppConfig(**data)


def payload_to_json(config: AppConfig, options: WorkerOptions) -> bytes:
    """What a worker reads from its config pipe."""
    return json.dumps(
        {"config": json.loads(config_to_json(config)), "options": dataclasses.asdict(options)}
    ).encode()


def payload_from_json(data: bytes) -> tuple[AppConfig, WorkerOptions]:
    parsed = json.loads(data)
    return config_from_json(json.dumps(parsed["config"])), WorkerOptions(**parsed["options"])


def launch_worker(
    spec: str,
    config: AppConfig,
    options: WorkerOptions | None = None,
    *,
    status_fd: int | None = None,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start a worker process running ``spec`` with ``config``; ``popen`` goes to
    :class:`subprocess.Popen` (``stdout``, ``env``, ``cwd``, ...).

    Order: the payload is encoded first (a bad config raises before anything starts), the
    pipe is made, the child started with the read end, and the payload written and the
    write end closed, so the child reads to the end. A child that dies before reading
    leaves the write failing with a broken pipe, which is ignored: its exit is what its
    supervisor sees.
    """
    payload = payload_to_json(config, options or WorkerOptions())
    read_end, write_end = os.pipe()  # both non-inheritable; pass_fds hands on the read end
    argv = [
        sys.executable,
        "-m",
        "streamer.runtime.child",
        spec,
        "--config-fd",
        str(read_end),
        "--parent-pid",
        str(os.getpid()),
    ]
    pass_fds = [read_end]
    if status_fd is not None:
        argv += ["--status-fd", str(status_fd)]
        pass_fds.append(status_fd)
    try:
        process = subprocess.Popen(argv, pass_fds=pass_fds, **popen)
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    with contextlib.suppress(BrokenPipeError), os.fdopen(write_end, "wb") as pipe:
        pipe.write(payload)
    return process
