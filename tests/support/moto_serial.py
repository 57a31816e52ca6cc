"""moto's server, serving one request at a time.

DynamoDB applies each conditional write atomically. moto's own server is threaded and checks a
condition and writes in separate steps, so two concurrent claims of one task could both "win"
there. Serving requests one by one gives back DynamoDB's guarantee, which is what the tests
are about. Usage: python moto_serial.py HOST PORT [REQUEST_LOG]

With REQUEST_LOG, each request's DynamoDB operation (the X-Amz-Target header) and the time it
came (Unix seconds) are appended to that file, one per line, so tests can count what a command
sent, and when.

With FAULTS (`OP[,OP...]:FAIL/EVERY`, e.g. `UpdateItem,Query:5/40`), of every EVERY requests
of the named operations the first FAIL are answered with DynamoDB's throttling error
(ProvisionedThroughputExceededException, HTTP 400) instead of reaching moto: more in a row
than the SDK's own retries absorb, so anamo's retry layer must ride them out.
With `:landed` after the ratio (`UpdateItem:1/4:landed`), those requests do reach moto and
take effect, but their answer is replaced by an HTTP 500: a write that landed while its caller
saw a failure, as after a timeout or a dropped connection.
With `:html403` (`Query:1/1:html403`), they are answered with HTTP 403 and an HTML page, as a
proxy or a denial in a form the SDK cannot parse: anamo must show what came.
Usage: python moto_serial.py HOST PORT [REQUEST_LOG [FAULTS]]

With IAM checks on (POST /moto-api/reset-auth, as tests/iam.rs does), moto verifies each
request's signature by signing it again. For a form body (EC2's query protocol) it signs the
form as Python encodes it again (a space as `+`), not the bytes that came (the SDK's `%20`), so
a correctly signed DescribeInstances with a space in a tag filter fails. AWS signs the bytes
that came; so does this server: each request's raw body is kept and moto's re-signing uses it.
"""

import io
import sys
import time

from moto.iam import access_control

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def logged(app, path):
    def wrapper(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", environ.get("REQUEST_METHOD", "?"))
        # S3 requests (no target) also log their path, after the time.
        where = "" if "HTTP_X_AMZ_TARGET" in environ else " " + environ.get("PATH_INFO", "")
        with open(path, "a") as log:
            log.write(f"{target.split('.')[-1]} {time.time():.3f}{where}\n")
        return app(environ, start_response)

    return wrapper


def operation(environ, ops):
    """The fault spec a request falls under: its DynamoDB operation, or for S3 its method
    (`PUT`), or `METHOD@SUFFIX` when its path ends with SUFFIX (`PUT@latest.json`)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.split(".")[-1]
    method = environ.get("REQUEST_METHOD", "?")
    path = environ.get("PATH_INFO", "")
    for spec in ops:
        if "@" in spec:
            m, suffix = spec.split("@", 1)
            if m == method and path.endswith(suffix):
                return spec
    return method


def throttled(app, spec):
    ops, ratio, *mode = spec.split(":")
    landed = mode == ["landed"]
    html403 = mode == ["html403"]
    # S3: `:denied` answers the last FAIL of every EVERY with 403 AccessDenied (the SDK does
    # not retry it); `:stall` holds them STALL seconds, then answers 500 without reaching moto:
    # a request in flight when its caller is killed. (The last, so a check made first passes.)
    denied = mode == ["denied"]
    stall = mode == ["stall"]
    fail, every = (int(x) for x in ratio.split("/"))
    ops = set(ops.split(","))
    seen = {}
    body = (
        b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
        b'"message":"injected by the test: throughput exceeded"}'
    )

    def wrapper(environ, start_response):
        op = operation(environ, ops)
        if op in ops:
            n = seen.get(op, 0)
            seen[op] = n + 1
            if stall and n % every >= every - fail:
                time.sleep(STALL)
                err = b"<Error><Code>InternalError</Code><Message>stalled</Message></Error>"
                start_response(
                    "500 Internal Server Error",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(err)))],
                )
                return [err]
            if denied and n % every >= every - fail:
                err = (
                    b"<Error><Code>AccessDenied</Code>"
                    b"<Message>injected by the test: access denied</Message></Error>"
                )
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(err)))],
                )
                return [err]
            if denied or stall:
                return app(environ, start_response)
            if n % every < fail and html403:
                page = b"<html><body><h1>403 Forbidden</h1>Request blocked by proxy</body></html>"
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "text/html"), ("Content-Length", str(len(page)))],
                )
                return [page]
            if n % every < fail and landed:
                lost = []
                for chunk in app(environ, lambda *a, **k: None):
                    lost.append(chunk)
                err = (
                    b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError",'
                    b'"message":"injected by the test: the answer was lost"}'
                )
                start_response(
                    "500 Internal Server Error",
                    [("Content-Type", "application/x-amz-json-1.0"),
                     ("Content-Length", str(len(err)))],
                )
                return [err]
            if n % every < fail:
                start_response(
                    "400 Bad Request",
                    [("Content-Type", "application/x-amz-json-1.0"),
                     ("Content-Length", str(len(body)))],
                )
                return [body]
        return app(environ, start_response)

    return wrapper


STALL = 6

RAW_BODY = [b""]


def raw_body_kept(app):
    """Keeps the request's bytes for moto's signature check (one request at a time here)."""

    def wrapper(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        RAW_BODY[0] = body
        return app(environ, start_response)

    return wrapper


_create_aws_request = access_control.IAMRequestBase._create_aws_request


def _signed_as_sent(self):
    request = _create_aws_request(self)
    if not self._body and RAW_BODY[0]:
        request.data = RAW_BODY[0]
    return request


access_control.IAMRequestBase._create_aws_request = _signed_as_sent


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    if len(sys.argv) > 4:
        app = throttled(app, sys.argv[4])
    if len(sys.argv) > 3:
        app = logged(app, sys.argv[3])
    app = raw_body_kept(app)
    run_simple(host, port, app, threaded=False)
