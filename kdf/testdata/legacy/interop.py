#!/usr/bin/python3
"""Helper for kdf's live interoperability tests (interop_test.go).

Reads one JSON request on stdin and writes one JSON answer on stdout, so
that passwords never pass through a shell or argv. Run with Debian's
/usr/bin/python3 (python3-passlib, python3-werkzeug, python3-bcrypt,
python3-argon2). Requests:

  {"op": "make", "password": str}
      -> {"hashes": [{"format", "library", "encoded"}...], "skipped": [str]}
      Hashes of password made now by each library, at low costs.
  {"op": "verify-argon2", "password": str, "encoded": str}
      -> {"argon2-cffi": bool, "passlib": bool}
      argon2-cffi's PasswordHasher().verify and passlib's argon2.verify.
  {"op": "pbkdf2", "digest": str, "password": str, "salt_b64": str,
   "iterations": int, "dklen": int}
      -> {"hex": str}       hashlib.pbkdf2_hmac's output.
"""

import base64
import hashlib
import json
import sys

import argon2
import bcrypt
from passlib import hash as ph
from werkzeug import security


def make(pw):
    hashes, skipped = [], []

    def add(fmt, library, encoded):
        hashes.append({"format": fmt, "library": library, "encoded": encoded})

    add("bcrypt-2b", "bcrypt", bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode())
    add("bcrypt-2y", "passlib bcrypt", ph.bcrypt.using(ident="2y", rounds=4).hash(pw))
    add("passlib-pbkdf2-sha256", "passlib", ph.pbkdf2_sha256.using(rounds=1000).hash(pw))
    add("passlib-pbkdf2-sha512", "passlib", ph.pbkdf2_sha512.using(rounds=1000).hash(pw))
    add("passlib-pbkdf2-sha1", "passlib", ph.pbkdf2_sha1.using(rounds=1000).hash(pw))
    add("passlib-scrypt", "passlib", ph.scrypt.using(rounds=10).hash(pw))
    add("django-pbkdf2-sha256", "passlib django", ph.django_pbkdf2_sha256.using(rounds=1000, salt_size=22).hash(pw))
    add("django-pbkdf2-sha1", "passlib django", ph.django_pbkdf2_sha1.using(rounds=1000).hash(pw))
    add("werkzeug-pbkdf2-sha256", "werkzeug", security.generate_password_hash(pw, method="pbkdf2:sha256:1000"))
    add("werkzeug-pbkdf2-sha512", "werkzeug", security.generate_password_hash(pw, method="pbkdf2:sha512:1000"))
    try:
        add("werkzeug-scrypt", "werkzeug",
            security.generate_password_hash(pw, method="scrypt:1024:8:1"))
    except (ValueError, TypeError) as e:  # Werkzeug < 3 has no scrypt method
        skipped.append("werkzeug scrypt: %s" % e)
    add("argon2id", "argon2-cffi",
        argon2.PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1).hash(pw))
    add("argon2id", "passlib argon2",
        ph.argon2.using(type="ID", memory_cost=1024, time_cost=2, parallelism=2).hash(pw))
    return {"hashes": hashes, "skipped": skipped}


def verify_argon2(pw, encoded):
    try:
        cffi = argon2.PasswordHasher().verify(encoded, pw)
    except argon2.exceptions.VerifyMismatchError:
        cffi = False
    return {"argon2-cffi": bool(cffi), "passlib": bool(ph.argon2.verify(pw, encoded))}


def pbkdf2(req):
    salt = base64.b64decode(req["salt_b64"])
    dk = hashlib.pbkdf2_hmac(req["digest"], req["password"].encode(), salt, req["iterations"], req["dklen"])
    return {"hex": dk.hex()}


def main():
    req = json.load(sys.stdin)
    op = req["op"]
    if op == "make":
        out = make(req["password"])
    elif op == "verify-argon2":
        out = verify_argon2(req["password"], req["encoded"])
    elif op == "pbkdf2":
        out = pbkdf2(req)
    else:
        sys.exit("interop.py: unknown op %r" % op)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
