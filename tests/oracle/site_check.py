#!/usr/bin/env python3
"""site_check: open a static site in headless Chromium and report what a person would see.

Drives Debian's `chromium` over the DevTools protocol on a pipe (--remote-debugging-pipe:
no port, no websocket library; standard library only). Starting at START.html it visits every
page of the site reachable by links, and prints ONE JSON document:

    {"pages": {"index.html": {"errors": [...], "links": [...], "ids": [...]}, ...},
     "broken": [...],        # links whose file or #anchor does not exist
     "external_requests": [...],  # anything the pages tried to load from outside the site
     "screenshot": PATH}     # full-page PNG of START.html, when --screenshot is given

`errors` are console errors (console.error, uncaught exceptions, and the browser's own error
log such as a resource that failed to load). Exit 0 when it ran (whatever it found), 1 when
Chromium could not be driven.

    site_check.py SITE_DIR [--start index.html] [--screenshot OUT.png] [--width 1280]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class Browser:
    def __init__(self, binary: str, user_data_dir: str) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()

        # The pipe ends go to fds 3 and 4 of chromium (the wrapper script keeps them open).
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", f'exec "$@" 3<&{cmd_r} 4>&{resp_w}', "sh",
             binary, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            pass_fds=(cmd_r, resp_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(os.environ.get("SITE_CHECK_LOG", os.devnull), "w"),
        )
        os.close(cmd_r)
        os.close(resp_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._resp_r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._next:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                del self.events[: i + 1]
                return
        while True:
            m = self._read_message(deadline)
            if m.get("method") == method:
                return
            self.events.append(m)

    def drain(self, seconds: float) -> None:
        """Collects events for a while (late console messages, failed loads)."""
        os.set_blocking(self._resp_r, False)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                try:
                    chunk = os.read(self._resp_r, 1 << 16)
                except BlockingIOError:
                    time.sleep(0.02)
                    continue
                if not chunk:
                    break
                self._buf += chunk
                while b"\0" in self._buf:
                    raw, self._buf = self._buf.split(b"\0", 1)
                    self.events.append(json.loads(raw))
        finally:
            os.set_blocking(self._resp_r, True)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def errors_of(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    errors, external = [], []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            errors.append(f"console.{p.get('type')}: {args}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append(f"exception: {d.get('text')} {d.get('exception', {}).get('description', '')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            errors.append(f"load failed: {p.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:", "about:")):
                external.append(url)
    return errors, external


LINKS_JS = """(() => {
  const out = [];
  for (const el of document.querySelectorAll('a[href], img[src], link[href], script[src]')) {
    out.push(el.getAttribute('href') ?? el.getAttribute('src'));
  }
  return {links: out, ids: [...document.querySelectorAll('[id]')].map(e => e.id),
          height: Math.ceil(document.documentElement.scrollHeight)};
})()"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("site")
    ap.add_argument("--start", default="index.html")
    ap.add_argument("--screenshot")
    ap.add_argument("--width", type=int, default=1280)
    args = ap.parse_args()
    site = os.path.realpath(args.site)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        print("site_check: no chromium on PATH (Debian package `chromium`)", file=sys.stderr)
        return 1

    result: dict[str, Any] = {"pages": {}, "broken": [], "external_requests": [], "screenshot": None}
    with tempfile.TemporaryDirectory(prefix="pitrix-chromium-") as profile:
        b = Browser(binary, profile)
        try:
            target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                b.call(f"{domain}.enable", session=session)
            b.call("Emulation.setDeviceMetricsOverride",
                   {"width": args.width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                   session=session)
            queue, seen = [args.start], set()
            wanted_anchors: list[tuple[str, str, str]] = []
            while queue:
                page = queue.pop(0)
                if page in seen:
                    continue
                seen.add(page)
                b.events.clear()
                url = "file://" + urllib.parse.quote(os.path.join(site, page))
                b.call("Page.navigate", {"url": url}, session=session)
                b.wait_for("Page.loadEventFired")
                b.drain(0.3)
                info = b.call("Runtime.evaluate", {"expression": LINKS_JS, "returnByValue": True},
                              session=session)["result"]["value"]
                errors, external = errors_of(b.events)
                result["pages"][page] = {"errors": errors, "links": info["links"], "ids": info["ids"]}
                result["external_requests"].extend(external)
                if page == args.start and args.screenshot:
                    b.call("Emulation.setDeviceMetricsOverride",
                           {"width": args.width, "height": max(900, info["height"]),
                            "deviceScaleFactor": 1, "mobile": False}, session=session)
                    shot = b.call("Page.captureScreenshot", {"format": "png"}, session=session)
                    with open(args.screenshot, "wb") as fh:
                        fh.write(base64.b64decode(shot["data"]))
                    result["screenshot"] = os.path.abspath(args.screenshot)
                    b.call("Emulation.setDeviceMetricsOverride",
                           {"width": args.width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                           session=session)
                base = os.path.dirname(page)
                for link in info["links"]:
                    if link.startswith(("http://", "https://", "mailto:", "data:")):
                        continue
                    path, _, anchor = link.partition("#")
                    rel = os.path.normpath(os.path.join(base, urllib.parse.unquote(path))) if path else page
                    full = os.path.join(site, rel)
                    if rel.startswith("..") or not os.path.isfile(full):
                        result["broken"].append(f"{page}: {link} (no file {rel})")
                        continue
                    if anchor:
                        wanted_anchors.append((page, link, rel))
                    if rel.endswith(".html"):
                        queue.append(rel)
            for page, link, rel in wanted_anchors:
                anchor = link.partition("#")[2]
                if rel in result["pages"] and anchor not in result["pages"][rel]["ids"]:
                    result["broken"].append(f"{page}: {link} (no #{anchor} in {rel})")
        finally:
            b.close()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
