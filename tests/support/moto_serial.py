"""moto's server, serving one request at a time.

DynamoDB applies each conditional write atomically. moto's own server is threaded and checks a
condition and writes in separate steps, so two concurrent claims of one task could both "win"
there. Serving requests one by one gives back DynamoDB's guarantee, which is what the tests
are about. Usage: python moto_serial.py HOST PORT [REQUEST_LOG]

With REQUEST_LOG, each request's DynamoDB operation (the X-Amz-Target header) is appended to
that file, one per line, so tests can count what a command sent.
"""

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def logged(app, path):
    def wrapper(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", environ.get("REQUEST_METHOD", "?"))
        with open(path, "a") as log:
            log.write(target.split(".")[-1] + "\n")
        return app(environ, start_response)

    return wrapper


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    if len(sys.argv) > 3:
        app = logged(app, sys.argv[3])
    run_simple(host, port, app, threaded=False)
