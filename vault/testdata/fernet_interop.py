#!/usr/bin/python3
"""Fernet interop helper for vault's tests (TestFernetPythonInterop).

Reads one JSON object from stdin:
  {"key": "<base64url Fernet key>", "open": "<token>", "seal": "<base64 plaintext>"}
opens "open" with cryptography.fernet.Fernet(key) (no ttl), seals the
plaintext given in "seal", and writes to stdout:
  {"opened": "<base64 plaintext>", "sealed": "<token>"}
Nothing reaches this script through its command line.
"""
import base64
import json
import sys

from cryptography.fernet import Fernet


def main():
    req = json.load(sys.stdin)
    f = Fernet(req["key"].encode("ascii"))
    opened = f.decrypt(req["open"].encode("ascii"))
    sealed = f.encrypt(base64.b64decode(req["seal"]))
    json.dump(
        {"opened": base64.b64encode(opened).decode("ascii"), "sealed": sealed.decode("ascii")},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
