#!/usr/bin/env python3
"""A Berth mapping endpoint in one file, standard library only.

It checks every request's X-Berth-Signature, remembers the batch ids it has taken (so a batch
sent again after a node failure is answered but not processed twice), prints each event, and
answers every data batch with the same bytes in upper case, which Berth sends down the socket.

    python3 docs/examples/endpoint.py --port 8080 --secret 'a-secret-of-16+-chars'

See docs/ENDPOINTS.md for the contract.
"""
import argparse
import base64
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seen_batches = set()


def make_handler(secret: bytes):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, self.headers.get("X-Berth-Signature", "")):
                self.send_response(401)  # a 4xx is not retried: Berth parks the batch
                self.end_headers()
                return
            request = json.loads(body)
            event, batch = request["event"], request["batchId"]
            data = base64.b64decode(request.get("data", ""))
            first_time = batch not in seen_batches
            seen_batches.add(batch)
            print(f"{event} {request['socketId']} batch={batch} seq={request['seqFrom']}..{request['seqTo']} "
                  f"{len(data)} bytes{'' if first_time else ' (again: already processed)'}", flush=True)
            if event == "data" and data:
                answer = {"reply": base64.b64encode(data.upper()).decode()}
                if data.strip() == b"bye":
                    answer = {"close": "goodbye"}  # Berth closes the socket with CLOSE 1004
                out = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            else:
                self.send_response(204)  # taken, nothing to answer
                self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.secret.encode()))
    print(f"endpoint listening on http://127.0.0.1:{args.port}/", flush=True)
    server.serve_forever()
