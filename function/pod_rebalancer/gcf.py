"""Cloud Functions glue: a Flask request into the HTTP edge and back, and functions-framework's
own error answers replaced where they would leak or loop. Flask is imported only when called:
the Lambda package has none."""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from pod_rebalancer import web
from pod_rebalancer.cloudevent import unreadable_envelope
from pod_rebalancer.errors import RequestError
from pod_rebalancer.runtime import Runtime

if TYPE_CHECKING:
    import flask


def http(request: flask.Request, runtime: Runtime) -> flask.Response:
    """The HTTP edge's answer to a Flask request."""
    import flask  # noqa: PLC0415  (present wherever functions-framework serves this)

    answer = web.handle(
        web.HttpRequest(
            method=request.method,
            headers={name.lower(): value for name, value in request.headers.items()},
            query=list(request.args.items(multi=True)),
            read=_reader(request.stream),
            content_length=request.content_length,
        ),
        runtime,
    )
    _drain(request.stream)
    return flask.Response(
        answer.text(), status=answer.status, mimetype="application/json", headers=answer.headers
    )


def _reader(stream: IO[bytes]) -> Callable[[int], bytes]:
    def read(size: int) -> bytes:
        try:
            return stream.read(size)
        except Exception as exc:  # the server's own framing errors (gunicorn's, werkzeug's)
            raise RequestError("body", f"could not be read ({type(exc).__name__})") from exc

    return read


def _drain(stream: IO[bytes]) -> None:
    """Read what is left of the body, and drop it. functions-framework reads the rest into memory
    after every answer: consumed here a chunk at a time, an upload costs no memory, and a
    malformed one ends here rather than in a 500 raised by the framework after we answered."""
    with contextlib.suppress(Exception):
        while stream.read(64 * 1024):
            pass


def unreadable_cloud_event(exc: Exception) -> tuple[str, int]:
    """What functions-framework raises, rather than answers, for some requests it cannot read as
    a CloudEvent (e.g. JSON nested deeper than its decoder follows): a 400, as it answers others
    it cannot read, not a 500 that Pub/Sub would deliver again for days. A RecursionError that did
    not come from the CloudEvent parser is a bug, and stays one."""
    if isinstance(exc, RecursionError) and not _raised_by_cloudevents(exc):
        raise exc
    return unreadable_envelope(f"it could not be parsed ({type(exc).__name__})"), 400


def not_a_cloud_event(exc: Exception) -> tuple[str, int]:
    """functions-framework's own 400 for a request that is no CloudEvent quotes the request's
    headers and body back, bearer token included, and a sender such as Alertmanager logs the
    answers it gets: answered here with nothing of the request in it."""
    return unreadable_envelope("neither a CloudEvent nor an event convertible to one"), 400


def _raised_by_cloudevents(exc: BaseException) -> bool:
    return any(
        "/cloudevents/" in frame.filename for frame in traceback.extract_tb(exc.__traceback__)
    )


def register(http_target: Callable[..., Any], cloud_event_target: Callable[..., Any]) -> None:
    """What functions-framework's decorators do (register each target's signature type), and the
    CloudEvent target's error answers. create_app names the target in FUNCTION_TARGET and imports
    main.py inside the new app's context; imported anywhere else, there is no app to tell."""
    import flask  # noqa: PLC0415
    import functions_framework  # noqa: PLC0415
    from cloudevents.exceptions import GenericException  # noqa: PLC0415
    from werkzeug.exceptions import BadRequest  # noqa: PLC0415

    functions_framework.http(http_target)
    functions_framework.cloud_event(cloud_event_target)
    target = os.environ.get("FUNCTION_TARGET")
    if flask.has_app_context() and target == cloud_event_target.__name__:
        for unreadable in (GenericException, RecursionError):
            flask.current_app.register_error_handler(unreadable, unreadable_cloud_event)
        flask.current_app.register_error_handler(BadRequest, not_a_cloud_event)
