"""Loading the user's entrypoint class and everything the server learns from it.

The entrypoint is duck-typed: only ``perform(self, **kwargs)`` is required. Optional methods:
``docs_input_example()``, ``docs_input_examples()``, ``auxiliary_endpoints()``,
``static_endpoints()``, ``webview_app(base_url)``, ``metrics()``. A ``request_context`` attribute
(a ContextVar holding the current request) is set on the instance.
"""

import contextvars
import importlib.util
import inspect
import json
import mimetypes
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

MAX_EXAMPLE_BYTES = 1024 * 1024
API_PREFIX = "/api/v1"

# The request being handled by the current thread (see server.Request); set on the entrypoint as
# ``request_context`` so user code can read headers, e.g. to pass the tracing id on.
request_context: contextvars.ContextVar = contextvars.ContextVar("racetrack_request", default=None)


class EntrypointError(Exception):
    """The entrypoint cannot be loaded or constructed."""


@dataclass
class StaticFile:
    path: Path
    mimetype: str


@dataclass
class Entrypoint:
    instance: Any
    module_path: Path
    class_name: str
    perform: Callable
    auxiliary: Dict[str, Callable] = field(default_factory=dict)  # "/api/v1/x" -> callable
    static: Dict[str, StaticFile] = field(default_factory=dict)  # "/api/v1/x" -> file
    examples: Dict[str, dict] = field(default_factory=dict)  # "/api/v1/perform" -> example body
    webview_app: Optional[Callable] = None

    def user_metrics(self) -> List[dict]:
        fn = getattr(self.instance, "metrics", None)
        if not callable(fn):
            return []
        result = fn()
        return list(result or [])


def endpoint_path(path: str) -> str:
    """Normalises a user endpoint key (``explain``, ``/explain``, ``/api/v1/explain``) to
    ``/api/v1/explain``."""
    path = "/" + str(path).strip().strip("/")
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        return path
    return API_PREFIX + path


def load_entrypoint(entrypoint_path: str, class_name: str = "", webview_base_url: str = "") -> Entrypoint:
    """Imports the entrypoint file as module ``fatman`` and constructs its class.

    Raises EntrypointError with a message meant for the fatman's owner.
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    venv_packages = os.environ.get("VENV_PACKAGES_PATH")
    if venv_packages and os.path.isdir(venv_packages) and venv_packages not in sys.path:
        sys.path.insert(1, venv_packages)

    if not entrypoint_path:
        raise EntrypointError("entrypoint path is not set (python.entrypoint_path in fatman.yaml)")
    path = Path(entrypoint_path)
    if not path.is_absolute():
        path = Path(cwd) / path
    if path.is_dir():
        raise EntrypointError(f"entrypoint path {entrypoint_path} is a directory, expected a Python file")
    if not path.is_file():
        raise EntrypointError(f"entrypoint file {entrypoint_path} does not exist (working directory {cwd})")
    entry_dir = str(path.parent)
    if entry_dir not in sys.path:
        sys.path.insert(1, entry_dir)

    spec = importlib.util.spec_from_file_location("fatman", str(path))
    if spec is None or spec.loader is None:
        raise EntrypointError(f"entrypoint file {entrypoint_path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fatman"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:  # SystemExit from user code counts as a failed import too
        raise EntrypointError(f"failed to import entrypoint module {entrypoint_path}: {_describe(e)}") from e

    cls = _pick_class(module, class_name, entrypoint_path)
    try:
        instance = cls()
    except BaseException as e:
        raise EntrypointError(f"entrypoint class {cls.__name__} failed to initialize: {_describe(e)}") from e

    perform = getattr(instance, "perform", None)
    if not callable(perform):
        raise EntrypointError(f"entrypoint class {cls.__name__} has no perform method")

    try:
        instance.request_context = request_context
    except Exception:  # read-only attributes, __slots__: the context is simply not offered
        pass

    entrypoint = Entrypoint(instance=instance, module_path=path, class_name=cls.__name__, perform=perform)
    entrypoint.auxiliary = _auxiliary_endpoints(instance)
    entrypoint.static = _static_endpoints(instance, base_dirs=[Path(cwd), path.parent])
    entrypoint.examples = _input_examples(instance, entrypoint.auxiliary)
    webview = getattr(instance, "webview_app", None)
    if callable(webview):
        try:
            entrypoint.webview_app = webview(webview_base_url)
        except BaseException as e:
            raise EntrypointError(f"webview_app of {cls.__name__} failed: {_describe(e)}") from e
    return entrypoint


def _describe(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _pick_class(module, class_name: str, entrypoint_path: str):
    if class_name:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise EntrypointError(f"class {class_name} was not found in {entrypoint_path}")
        if not inspect.isclass(cls):
            raise EntrypointError(f"{class_name} in {entrypoint_path} is not a class")
        return cls
    classes = [
        obj for _, obj in inspect.getmembers(module, inspect.isclass) if obj.__module__ == module.__name__
    ]
    if not classes:
        raise EntrypointError(f"no class has been found in module {entrypoint_path}")
    if len(classes) > 1:
        names = ", ".join(sorted(c.__name__ for c in classes))
        raise EntrypointError(
            f"multiple classes found in a module, the name should be set explicitly (python.entrypoint_class): {names}"
        )
    return classes[0]


def _auxiliary_endpoints(instance) -> Dict[str, Callable]:
    fn = getattr(instance, "auxiliary_endpoints", None)
    if not callable(fn):
        return {}
    try:
        mapping = fn() or {}
    except BaseException as e:
        raise EntrypointError(f"auxiliary_endpoints() failed: {_describe(e)}") from e
    if not isinstance(mapping, dict):
        raise EntrypointError("auxiliary_endpoints() must return a dict {path: callable}")
    result = {}
    for key, handler in mapping.items():
        if not callable(handler):
            raise EntrypointError(f"auxiliary endpoint {key} is not callable")
        path = endpoint_path(key)
        if path in (API_PREFIX + "/perform", API_PREFIX + "/parameters"):
            raise EntrypointError(f"auxiliary endpoint {key} collides with a built-in endpoint")
        result[path] = handler
    return result


def _resolve(filename: str, base_dirs: List[Path]) -> Path:
    candidate = Path(filename)
    if candidate.is_absolute():
        return candidate
    for base in base_dirs:
        if (base / candidate).exists():
            return base / candidate
    return base_dirs[0] / candidate


def _static_endpoints(instance, base_dirs: List[Path]) -> Dict[str, StaticFile]:
    fn = getattr(instance, "static_endpoints", None)
    if not callable(fn):
        return {}
    try:
        mapping = fn() or {}
    except BaseException as e:
        raise EntrypointError(f"static_endpoints() failed: {_describe(e)}") from e
    if not isinstance(mapping, dict):
        raise EntrypointError("static_endpoints() must return a dict {path: filename or (filename, mimetype)}")
    result: Dict[str, StaticFile] = {}
    for key, target in mapping.items():
        mimetype = None
        if isinstance(target, (tuple, list)):
            if len(target) != 2:
                raise EntrypointError(f"static endpoint {key}: expected (filename, mimetype)")
            target, mimetype = target
        file_path = _resolve(str(target), base_dirs)
        path = endpoint_path(key)
        if file_path.is_dir():
            for child in sorted(file_path.rglob("*")):
                if child.is_file():
                    rel = child.relative_to(file_path).as_posix()
                    result[f"{path}/{rel}"] = StaticFile(child, mimetype or _guess_type(child))
        elif file_path.is_file():
            result[path] = StaticFile(file_path, mimetype or _guess_type(file_path))
        else:
            raise EntrypointError(f"static endpoint {key}: file {target} does not exist")
    return result


def _guess_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "text/plain"


def _input_examples(instance, auxiliary: Dict[str, Callable]) -> Dict[str, dict]:
    examples: Dict[str, dict] = {}
    single = getattr(instance, "docs_input_example", None)
    if callable(single):
        try:
            examples[API_PREFIX + "/perform"] = single()
        except BaseException as e:
            raise EntrypointError(f"docs_input_example() failed: {_describe(e)}") from e
    many = getattr(instance, "docs_input_examples", None)
    if callable(many):
        try:
            mapping = many() or {}
        except BaseException as e:
            raise EntrypointError(f"docs_input_examples() failed: {_describe(e)}") from e
        if not isinstance(mapping, dict):
            raise EntrypointError("docs_input_examples() must return a dict {endpoint: example}")
        for key, example in mapping.items():
            examples[endpoint_path(key)] = example  # takes precedence over docs_input_example()
    for endpoint, example in examples.items():
        if not isinstance(example, dict):
            raise EntrypointError(f"input example for {endpoint} must be a dict, got {type(example).__name__}")
        try:
            size = len(json.dumps(example).encode())
        except (TypeError, ValueError) as e:
            raise EntrypointError(f"input example for {endpoint} is not JSON serializable: {e}") from e
        if size > MAX_EXAMPLE_BYTES:
            raise EntrypointError(f"input example for {endpoint} is larger than 1 MiB ({size} bytes)")
    return examples


# ---------------------------------------------------------------------------------------------
# Introspection for /api/v1/parameters and the OpenAPI document


def type_name(annotation) -> str:
    if annotation is inspect.Parameter.empty:
        return "Any"
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    text = repr(annotation)
    return text.replace("typing.", "")


def parameters(fn: Callable) -> List[dict]:
    """``[{name, type}]`` for required arguments, ``[{name, default_value, type}]`` for optional and
    keyword-only ones; ``*args`` is reported as ``List[T]``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    result = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.kind is p.VAR_POSITIONAL:
            result.append({"name": p.name, "type": f"List[{type_name(p.annotation)}]"})
            continue
        entry = {"name": p.name}
        if p.default is not p.empty or p.kind is p.KEYWORD_ONLY:
            entry["default_value"] = _jsonable(None if p.default is p.empty else p.default)
        entry["type"] = type_name(p.annotation)
        result.append(entry)
    return result


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array",
               dict: "object", tuple: "array", set: "array"}


def json_schema(annotation) -> dict:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    origin = typing.get_origin(annotation) or annotation
    args = typing.get_args(annotation)
    if origin is typing.Union:
        options = [json_schema(a) for a in args if a is not type(None)]
        schema = options[0] if len(options) == 1 else ({"anyOf": options} if options else {})
        if type(None) in args:
            schema = dict(schema, nullable=True)
        return schema
    kind = _JSON_TYPES.get(origin)
    if kind is None:
        return {}
    schema = {"type": kind}
    if kind == "array" and args:
        schema["items"] = json_schema(args[0])
    return schema


def body_schema(fn: Callable) -> dict:
    """A JSON schema of the keyword arguments a callable accepts."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {"type": "object"}
    properties, required = {}, []
    extra = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            extra = True
            continue
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        schema = json_schema(p.annotation)
        if p.default is not p.empty:
            schema = dict(schema, default=_jsonable(p.default))
        elif p.kind is not p.KEYWORD_ONLY or p.default is p.empty:
            required.append(p.name)
        properties[p.name] = schema
    result = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    if not extra:
        result["additionalProperties"] = False
    return result


def read_static(static: StaticFile) -> Tuple[bytes, str]:
    return static.path.read_bytes(), static.mimetype
