"""moto's server, serving one request at a time.

DynamoDB applies each conditional write atomically. moto's own server is threaded and checks a
condition and writes in separate steps, so two concurrent claims of one task could both "win"
there. Serving requests one by one gives back DynamoDB's guarantee, which is what the tests
are about. Usage: python moto_serial.py HOST PORT
"""

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, DomainDispatcherApplication(create_backend_app), threaded=False)
