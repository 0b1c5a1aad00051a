#!/usr/bin/env python3
"""Writes pitrix's container image as an OCI image layout, byte-reproducibly, with no daemon.

Called by scripts/build-image.sh (which builds the static binary and gathers the inputs).
The same inputs give the same bytes, so the same digests:
- one layer, a tar written entry by entry in a fixed order (parents before children, sorted),
  every mtime = --created, owners numeric (root, except the non-root user's home), no
  user/group names from the build machine, USTAR headers (no PAX timestamps);
- gzip with a fixed header (no file name, mtime 0) at level 9 (zlib's output is fixed for a
  given zlib; a different zlib may compress differently and so give another layer digest);
- the config, manifest and index as compact JSON with sorted keys.

Usage: layout.py --out DIR --binary FILE --ca-bundle FILE --arch amd64|arm64 --version V
                 --created EPOCH [--label KEY=VALUE ...] [--ref-name NAME]
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile

UID = 65532  # the non-root user (distroless's "nonroot")
USER = "nonroot"
BINARY_PATH = "usr/local/bin/pitrix"
CA_PATH = "etc/ssl/certs/ca-certificates.crt"
HOME = "home/nonroot"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rootfs_entries(binary: bytes, ca_bundle: bytes):
    """(path, kind, mode, uid, data) of every entry, parents before children."""
    passwd = (
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"{USER}:x:{UID}:{UID}:{USER}:/{HOME}:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    ).encode()
    group = f"root:x:0:\n{USER}:x:{UID}:\nnobody:x:65534:\n".encode()
    entries = [
        ("etc/", "dir", 0o755, 0, None),
        ("etc/group", "file", 0o644, 0, group),
        ("etc/passwd", "file", 0o644, 0, passwd),
        ("etc/ssl/", "dir", 0o755, 0, None),
        ("etc/ssl/certs/", "dir", 0o755, 0, None),
        (CA_PATH, "file", 0o644, 0, ca_bundle),
        ("home/", "dir", 0o755, 0, None),
        (HOME + "/", "dir", 0o700, UID, None),
        ("tmp/", "dir", 0o1777, 0, None),
        ("usr/", "dir", 0o755, 0, None),
        ("usr/local/", "dir", 0o755, 0, None),
        ("usr/local/bin/", "dir", 0o755, 0, None),
        (BINARY_PATH, "file", 0o755, 0, binary),
    ]
    names = [e[0].rstrip("/") for e in entries]
    assert names == sorted(names), "entries must be written sorted"
    return entries


def layer_tar(entries, mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, kind, mode, uid, data in entries:
            info = tarfile.TarInfo(path)
            info.mode = mode
            info.uid = info.gid = uid
            info.uname = info.gname = ""
            info.mtime = mtime
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    # filename="" and mtime=0: nothing of the build machine or the clock in the header.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


class Blobs:
    def __init__(self, root: str):
        self.dir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.dir)

    def put(self, data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.dir, digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--binary", required=True)
    p.add_argument("--ca-bundle", required=True)
    p.add_argument("--arch", required=True, choices=["amd64", "arm64"])
    p.add_argument("--version", required=True)
    p.add_argument("--created", required=True, type=int, help="seconds since the epoch")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--ref-name", help="org.opencontainers.image.ref.name of the manifest (default: --version)")
    a = p.parse_args()

    labels = {}
    for item in a.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--label {item!r}: expected KEY=VALUE")
        labels[key] = value
    created = datetime.datetime.fromtimestamp(a.created, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    with open(a.binary, "rb") as f:
        binary = f.read()
    with open(a.ca_bundle, "rb") as f:
        ca_bundle = f.read()
    if b"BEGIN CERTIFICATE" not in ca_bundle:
        print(f"layout.py: {a.ca_bundle} holds no certificate", file=sys.stderr)
        return 1

    tar = layer_tar(rootfs_entries(binary, ca_bundle), a.created)
    layer = gzip_bytes(tar)

    out = os.path.abspath(a.out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    if os.path.exists(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, "oci-layout")):
        print(f"layout.py: {out} is not empty and not an OCI image layout: refusing to replace it", file=sys.stderr)
        return 1
    # Written beside OUT, then swapped in: OUT is either the old layout or the new one.
    stage = tempfile.mkdtemp(prefix=".image-", dir=parent)
    try:
        blobs = Blobs(stage)
        layer_desc = blobs.put(layer, MT_LAYER)
        config = {
            "architecture": a.arch,
            "os": "linux",
            "created": created,
            "config": {
                "User": f"{UID}:{UID}",
                "Entrypoint": ["pitrix"],
                "Env": [f"PATH={PATH}", f"SSL_CERT_FILE=/{CA_PATH}"],
                "WorkingDir": "/",
                "Labels": labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
            "history": [{"created": created, "created_by": "scripts/build-image.sh"}],
        }
        config_desc = blobs.put(canonical_json(config), MT_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": config_desc,
            "layers": [layer_desc],
            "annotations": {k: v for k, v in labels.items() if k.startswith("org.opencontainers.image.")},
        }
        manifest_desc = blobs.put(canonical_json(manifest), MT_MANIFEST)
        manifest_desc["platform"] = {"architecture": a.arch, "os": "linux"}
        manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": a.ref_name or a.version}
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [manifest_desc]}
        write_file(os.path.join(stage, "index.json"), canonical_json(index))
        write_file(os.path.join(stage, "oci-layout"), canonical_json({"imageLayoutVersion": "1.0.0"}))
        for dirpath, dirnames, filenames in os.walk(stage):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        if os.path.exists(out):
            old = out + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(out, old)
            os.rename(stage, out)
            shutil.rmtree(old)
        else:
            os.rename(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    print(f"{manifest_desc['digest']} {out} ({a.arch}, layer {len(layer)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
