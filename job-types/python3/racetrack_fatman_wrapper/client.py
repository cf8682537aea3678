"""Calling another fatman through PUB (fatman-to-fatman calls).

    from racetrack_fatman_wrapper.client import call_fatman
    total = call_fatman('adder', '/api/v1/perform', {'numbers': [40, 2]})

The call goes to ``$PUB_URL/fatman/<name>/<version><path>`` with ``X-Racetrack-Auth: $AUTH_TOKEN``
(the token of the calling fatman's family, injected by the platform) and, when called while
handling a request, that request's tracing id, so one id follows the whole chain. The calling
family needs the ``call_fatman`` permission on the target.
"""

import json
import os
import urllib.error
import urllib.request
from typing import Any, Optional

from .logs import tracing_id_var

DEFAULT_TRACING_HEADER = "X-Request-Tracing-Id"


class FatmanCallError(RuntimeError):
    """A call to another fatman failed; ``status`` is the HTTP status (None: no response)."""

    def __init__(self, message: str, status: Optional[int] = None, body: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.body = body


def call_fatman(name: str, path: str = "/api/v1/perform", payload: Any = None, version: str = "latest",
                method: Optional[str] = None, timeout: Optional[float] = None, headers: Optional[dict] = None) -> Any:
    """Calls fatman ``name`` (``version``: exact, ``latest`` or a wildcard like ``1.x``) at ``path``
    and returns the decoded JSON response (or the text when it is not JSON).

    POST with the JSON ``payload`` (``{}`` when None) unless ``method`` says otherwise.
    Raises FatmanCallError ``failed to call fatman "<name> <version>" by <FATMAN_NAME>: ...``.
    """
    pub_url = os.environ.get("PUB_URL", "").rstrip("/")
    caller = os.environ.get("FATMAN_NAME", "")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{pub_url}/fatman/{name}/{version}{path}"
    method = (method or "POST").upper()

    def fail(reason: str, status: Optional[int] = None, body: Optional[str] = None):
        return FatmanCallError(f'failed to call fatman "{name} {version}" by {caller}: {reason}', status, body)

    if not pub_url:
        raise fail("PUB_URL is not set")
    request_headers = {
        "Accept": "application/json, */*",
        "X-Racetrack-Auth": os.environ.get("AUTH_TOKEN", ""),
    }
    tracing_header = os.environ.get("REQUEST_TRACING_HEADER") or DEFAULT_TRACING_HEADER
    tracing_id = tracing_id_var.get()
    if tracing_id:
        request_headers[tracing_header] = tracing_id
    data = None
    if method not in ("GET", "HEAD"):
        data = json.dumps({} if payload is None else payload).encode()
        request_headers["Content-Type"] = "application/json"
    request_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, headers=request_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", errors="replace")
        raise fail(f"{e.code} {e.reason}: {body}", e.code, body) from e
    except (urllib.error.URLError, OSError) as e:
        raise fail(str(getattr(e, "reason", e))) from e
    try:
        return json.loads(body)
    except ValueError:
        return body
