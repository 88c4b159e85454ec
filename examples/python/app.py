# A Python web app for skiff's python buildpack: the standard library's HTTP server on $PORT.
# A dependency listed in requirements.txt is installed into the droplet's venv at staging; this app
# uses one (greeting) when it is there, so the sample runs with none as well.

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from greeting import hello  # installed from requirements.txt, when listed
except ImportError:
    hello = None

INDEX = os.environ.get("CF_INSTANCE_INDEX", "0")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        extra = f"; {hello()}" if hello else ""
        body = f"hello from python {sys.version.split()[0]} (instance {INDEX}, venv {sys.prefix}){extra}\n".encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(f"{self.address_string()} {fmt % args}", flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"python app listening on {port}, instance {INDEX}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
