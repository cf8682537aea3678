"""A fatman that calls another fatman through PUB with its family's token (fatman-to-fatman)."""
import json
import os
import urllib.error
import urllib.request
from typing import Callable, Dict, List, Optional


class ChainModel:
    def perform(self, numbers: List[float], target: Optional[str] = None) -> float:
        """Sum of the numbers, computed by fatman `target` when given.

        :param numbers: numbers to add
        :param target: name of the fatman to delegate to (its latest version)
        """
        if not target:
            return sum(numbers)
        return call_fatman(target, "/api/v1/perform", {"numbers": numbers})

    def auxiliary_endpoints(self) -> Dict[str, Callable]:
        return {"/ping": self.ping}

    def ping(self) -> str:
        """Liveness of the chain itself (approved as a public endpoint)."""
        return "pong"

    def docs_input_example(self) -> dict:
        return {"numbers": [40, 2]}


def call_fatman(name: str, path: str, payload: dict, version: str = "latest"):
    url = f"{os.environ['PUB_URL']}/fatman/{name}/{version}{path}"
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, */*",
            "X-Racetrack-Auth": os.environ["AUTH_TOKEN"],
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        raise RuntimeError(
            f'failed to call fatman "{name} {version}" by {os.environ.get("FATMAN_NAME")}: {e.code} {detail}'
        ) from None
