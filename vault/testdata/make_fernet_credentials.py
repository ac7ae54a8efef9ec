#!/usr/bin/python3
"""Writes a passphrase-encrypted Fernet credentials file to stdout.

This is the layout vault.ImportFernetCredentials reads (FORMAT.md 3.5):
a JSON object with "encrypted": true, "version": "1.0", "salt" (16 random
bytes in standard base64) and the Fernet tokens "email", "password" and
"mfa_secret" ("" for an empty value). The Fernet key is
PBKDF2-HMAC-SHA256(passphrase as UTF-8, salt, 480000 iterations, 32 bytes),
base64url-encoded as cryptography.fernet.Fernet expects.

With no stdin input it writes the committed fixture,
fernet_credentials.json (python3 make_fernet_credentials.py </dev/null >
fernet_credentials.json); the tests know its passphrase and values. Given a
JSON object on stdin ({"passphrase", "email", "password", "mfa_secret"}),
it uses those instead.
"""
import base64
import json
import os
import sys

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

FIXTURE = {
    "passphrase": "Fixture-Passphrase-\u00fc-2024!",
    "email": "migrating.user@example.com",
    "password": "correct horse battery staple 42!",
    "mfa_secret": "JBSWY3DPEHPK3PXP",
}


def seal(f, value):
    return f.encrypt(value.encode("utf-8")).decode("ascii") if value else ""


def main():
    raw = sys.stdin.read()
    p = json.loads(raw) if raw.strip() else FIXTURE
    salt = os.urandom(16)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=480000)
    f = Fernet(base64.urlsafe_b64encode(kdf.derive(p["passphrase"].encode("utf-8"))))
    out = {
        "encrypted": True,
        "version": "1.0",
        "salt": base64.b64encode(salt).decode("ascii"),
        "email": seal(f, p["email"]),
        "password": seal(f, p["password"]),
        "mfa_secret": seal(f, p["mfa_secret"]),
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
