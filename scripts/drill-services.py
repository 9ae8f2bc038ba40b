"""Local stand-ins for what the drills touch besides AWS: the application's health endpoint,
an API call for a basic operations test, and the incident webhook. Listens on 127.0.0.1 only.

Usage: python3 scripts/drill-services.py PORT
  GET  /health    -> {"status":"ok","db":"ok"}
  GET  /api/tasks -> a list of one task (the multi-service drill's operations test)
  POST /hook      -> 200, the message is printed to stderr
"""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health" or self.path.startswith("/api/tasks"):
            if self.path == "/health":
                body = b'{"status":"ok","db":"ok"}'
            else:
                body = b'{"tasks":[{"id":"t-1","title":"check the failover"}]}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        message = self.rfile.read(length).decode("utf-8", "replace")
        sys.stderr.write(f"webhook: {message}\n")
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
