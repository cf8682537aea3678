"""Racetrack-rs fatman wrapper for the python3 job type.

Serves a data scientist's entrypoint class (a "fatman") over HTTP following the fatman runtime
contract: ``POST /api/v1/perform``, ``/live``, ``/ready``, ``/health``, ``/metrics``, OpenAPI docs,
auxiliary and static endpoints, all of them at the root and under ``/pub/fatman/<name>/<version>``.
Standard library only.

Run it as ``python -u -m racetrack_fatman_wrapper run <entrypoint_path> [<entrypoint_class>]``.
"""

__version__ = "2.4.0"
