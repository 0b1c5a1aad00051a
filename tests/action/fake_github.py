#!/usr/bin/env python3
"""A loopback stand-in for the GitHub REST API's issue comments, for tests/action.rs.

Usage: fake_github.py STATE_DIR
Prints the port it listens on (127.0.0.1), then serves until killed. Every request is appended
to STATE_DIR/requests.jsonl (method, path, headers, body); comments live in
STATE_DIR/comments.json, which the test may seed. Lists are paginated one comment per page with
a Link header, as GitHub paginates, so the client must follow rel="next".
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

STATE = sys.argv[1]
COMMENTS = os.path.join(STATE, "comments.json")
REQUESTS = os.path.join(STATE, "requests.jsonl")


def load():
    if not os.path.exists(COMMENTS):
        return []
    with open(COMMENTS, encoding="utf-8") as f:
        return json.load(f)


def save(comments):
    with open(COMMENTS, "w", encoding="utf-8") as f:
        json.dump(comments, f, indent=1)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def record(self, body):
        with open(REQUESTS, "a", encoding="utf-8") as f:
            f.write(json.dumps({
                "method": self.command,
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "accept": self.headers.get("Accept"),
                "body": body,
            }) + "\n")

    def reply(self, status, payload, link=None):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if link:
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def do_GET(self):
        self.record(None)
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        # /repos/{owner}/{repo}/issues/{n}/comments
        if len(parts) == 6 and parts[3] == "issues" and parts[5] == "comments":
            number = int(parts[4])
            page = int(parse_qs(url.query).get("page", ["1"])[0])
            mine = [c for c in load() if c["issue"] == number]
            chunk = mine[page - 1:page]
            link = None
            if page < len(mine):
                host = self.headers.get("Host")
                link = f'<http://{host}{url.path}?per_page=1&page={page + 1}>; rel="next"'
            return self.reply(200, [public(c) for c in chunk], link)
        self.reply(404, {"message": "Not Found"})

    def do_POST(self):
        body = self.body()
        self.record(body)
        parts = urlparse(self.path).path.strip("/").split("/")
        if len(parts) == 6 and parts[3] == "issues" and parts[5] == "comments":
            comments = load()
            comment = {
                "id": 1000 + len(comments),
                "issue": int(parts[4]),
                "body": body["body"],
                "user": {"login": "github-actions[bot]", "type": "Bot"},
            }
            comments.append(comment)
            save(comments)
            return self.reply(201, public(comment))
        self.reply(404, {"message": "Not Found"})

    def do_PATCH(self):
        body = self.body()
        self.record(body)
        parts = urlparse(self.path).path.strip("/").split("/")
        # /repos/{owner}/{repo}/issues/comments/{id}
        if len(parts) == 6 and parts[3] == "issues" and parts[4] == "comments":
            comments = load()
            for c in comments:
                if c["id"] == int(parts[5]):
                    if c["user"]["type"] != "Bot":
                        return self.reply(403, {"message": "Resource not accessible by integration"})
                    c["body"] = body["body"]
                    save(comments)
                    return self.reply(200, public(c))
        self.reply(404, {"message": "Not Found"})


def public(c):
    return {k: v for k, v in c.items() if k != "issue"}


def main():
    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
