"""Promoting on a running prediction server from outside it (the CLI's ``promote --server``, the Monitor tab):
POST /v1/promote, after checking that the server serves the model name asked for."""
from __future__ import annotations

from pathlib import Path

from ..common.errors import DataError, StudioError

TIMEOUT_S = 300.0  # the server loads and warms the new model before it answers


def promote_on_server(url: str, run: str | Path | None = None, version: int | None = None, model: str | None = None,
                      token: str | None = None, timeout_s: float = TIMEOUT_S) -> str:
    """Swap the model of the server at ``url`` for ``run`` (or the served name's ``version``); a line saying what it
    serves now. ``model``: refuse unless the server serves that name."""
    import httpx

    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise DataError(f"'{url}' is not a server address: give one like http://127.0.0.1:8000.")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"run": str(run)} if run is not None else {"version": version}
    try:
        if model:
            served = httpx.get(f"{url}/healthz", timeout=10).json().get("model", "")
            if not served.startswith(f"{model}:"):
                raise DataError(f"The server at {url} serves '{served}', not the model '{model}'.")
        answer = httpx.post(f"{url}/v1/promote", json=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise StudioError(f"Could not reach the server at {url}: {exc}") from exc
    found = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
    if answer.status_code != 200:
        raise StudioError(f"The server refused ({answer.status_code}): {found.get('error') or answer.text[:200]}")
    return f"{url} serves {found['model']} (was {found['previous']})"
