"""A small stdlib HTTP client for ``condsel serve`` (tests, the load benchmark, scripts without extra packages)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path


def multipart_body(filename: str, data: bytes, fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body with the file in field ``video``; returns (body, content type)."""
    boundary = f"condsel-{uuid.uuid4().hex}"
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_video(
    url: str, path: str | Path, threshold: float | None = None, filename: str | None = None, data: bytes | None = None, timeout: float = 120.0
) -> tuple[int, dict]:
    """POST a video file (or ``data``) to ``url`` (``.../v1/predict``); returns (HTTP status, JSON answer).

    Examples
    --------
    >>> status, answer = post_video("http://127.0.0.1:8000/v1/predict", "clip.mp4")  # doctest: +SKIP
    >>> answer["model"], answer["label"]  # doctest: +SKIP
    """
    path = Path(path)
    payload = path.read_bytes() if data is None else data
    fields = {} if threshold is None else {"threshold": repr(float(threshold))}
    body, content_type = multipart_body(filename or path.name, payload, fields)
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    return _send(request, timeout)


def get_json(url: str, timeout: float = 10.0) -> tuple[int, dict]:
    """GET ``url``; returns (HTTP status, JSON answer)."""
    return _send(urllib.request.Request(url), timeout)


def wait_healthy(base_url: str, timeout: float = 60.0, alive=lambda: True) -> float:
    """Poll ``base_url/healthz`` until it answers 200; returns the seconds waited. ``alive()`` False stops early."""
    start = time.monotonic()
    while time.monotonic() - start < timeout and alive():
        try:
            if get_json(f"{base_url}/healthz", timeout=5.0)[0] == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{base_url}/healthz did not answer 200 within {timeout:.0f} s")


def _send(request: urllib.request.Request, timeout: float) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, {"error": text.decode(errors="replace")}
