#!/usr/bin/python3
"""Make kdf/testdata/legacy/fixtures.json: password hashes made by the real
libraries that keyhold's kdf package imports (verify-only), at low but valid
costs so that the Go tests stay fast.

Run with Debian's interpreter, which the python3-* packages install into:

    apt-get install python3-passlib python3-werkzeug python3-bcrypt \
        python3-argon2 python3-django argon2
    /usr/bin/python3 kdf/testdata/legacy/make_fixtures.py > kdf/testdata/legacy/fixtures.json

Each fixture says which library made it ("library", with its version), what
the library was given ("hashed"), and what keyhold must do with it:
"password" and every entry of "also_match" must verify (with needs-rehash),
every entry of "wrong" must give ErrMismatch. Salts are random, so each run
gives new hashes; the expectations stay the same.

Libraries hash the UTF-8 bytes of the password as given: none of them
normalises Unicode or trims anything. Werkzeug 2.2 (Debian 12) predates
Werkzeug's scrypt method; when the installed Werkzeug lacks it, the scrypt
fixtures are made with a verbatim copy of Werkzeug 3.1's scrypt branch of
security._hash_internal (see werkzeug3_scrypt below), and labelled so.
"""

import hashlib
import json
import secrets
import subprocess
import sys
import unicodedata

import argon2
import bcrypt
import django
import passlib
import werkzeug
from django.conf import settings as django_settings
from passlib import hash as ph
from werkzeug import security

try:
    from importlib.metadata import version as _dist_version
except ImportError:  # pragma: no cover
    _dist_version = None


def dist_version(name, module):
    v = getattr(module, "__version__", None)
    if v is None and _dist_version is not None:
        v = _dist_version(name)
    return v


VERSIONS = {
    "python": sys.version.split()[0],
    "bcrypt": dist_version("bcrypt", bcrypt),
    "passlib": dist_version("passlib", passlib),
    "werkzeug": dist_version("werkzeug", werkzeug),
    "argon2-cffi": dist_version("argon2-cffi", argon2),
    "django": django.get_version(),
    "argon2-cli": subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "argon2"],
        capture_output=True, text=True).stdout or "unknown",
}

A72 = "a" * 72
PASSWORDS = {
    "ascii": "correct horse battery staple",
    "non-ascii": "p\u00e4ssw\u00f6rd \u00fcn\u00efc\u00f6d\u00e9 \u5bc6\u7801 \U0001f511",
    "trailing-space": "trailing space ",
    "nfd": "cafe\u0301 ma\u00f1ana",  # decomposed é: not in NFKC form
}


def nfkc(s):
    return unicodedata.normalize("NFKC", s)


def other_forms(pw):
    """pw's other Unicode normal forms."""
    forms = {unicodedata.normalize(f, pw) for f in ("NFC", "NFD", "NFKC", "NFKD")}
    forms.discard(pw)
    return sorted(forms)


def wrong_for(pw, normalizing):
    """Inputs that must not verify against a hash of pw.

    normalizing: the hash is an imported Argon2id one, for which keyhold
    tries the input's NFKC form first and then its bytes as received, so an
    input whose NFKC form is pw verifies too (see also_match_for). For the
    other imported formats only the bytes as received count.
    """
    w = [pw + "x", pw[:-1],
         pw.upper() if pw.upper() != pw else pw + "X",
         pw.strip() if pw.strip() != pw else " " + pw]
    for v in other_forms(pw):
        if not normalizing or nfkc(v) != pw:
            w.append(v)
    return sorted(set(v for v in w if v != pw))


def also_match_for(pw, normalizing):
    """Other inputs that verify: for an imported Argon2id hash of an NFKC
    password, its other normal forms (keyhold tries their NFKC form)."""
    if not normalizing:
        return []
    return [v for v in other_forms(pw) if nfkc(v) == pw]


fixtures = []


def add(fmt, library, encoded, pw, hashed=None, wrong=None, also_match=None, note=None, normalizing=False):
    f = {
        "format": fmt,
        "library": library,
        "hashed": pw if hashed is None else hashed,
        "password": pw,
        "also_match": also_match if also_match is not None else also_match_for(pw, normalizing),
        "wrong": wrong if wrong is not None else wrong_for(pw, normalizing),
        "encoded": encoded,
    }
    if note:
        f["note"] = note
    fixtures.append(f)


def lib(name):
    return "%s %s" % (name, VERSIONS[name])


# ---- bcrypt -------------------------------------------------------------
for kind, pw in PASSWORDS.items():
    add("bcrypt-2b", lib("bcrypt"), bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode(), pw)
add("bcrypt-2a", lib("bcrypt"),
    bcrypt.hashpw(PASSWORDS["non-ascii"].encode(), bcrypt.gensalt(5, prefix=b"2a")).decode(),
    PASSWORDS["non-ascii"])
# bcrypt (the PyPI package) only writes 2a/2b; passlib writes PHP's 2y.
add("bcrypt-2y", "passlib %s (bcrypt backend)" % VERSIONS["passlib"],
    ph.bcrypt.using(ident="2y", rounds=4).hash(PASSWORDS["ascii"]), PASSWORDS["ascii"])

# KDF-03: exactly 72 bytes verifies; any 73rd byte must not be ignored.
add("bcrypt-2b", lib("bcrypt"), bcrypt.hashpw(A72.encode(), bcrypt.gensalt(4)).decode(), A72,
    wrong=[A72 + "c", A72 + "a", A72[:-1]],
    note="72-byte password: the 73-byte inputs must not verify (KDF-03)")
try:
    truncated = bcrypt.hashpw((A72 + "b").encode(), bcrypt.gensalt(4)).decode()
except ValueError:
    truncated = None  # bcrypt >= 5.0 refuses passwords over 72 bytes
if truncated is not None and bcrypt.checkpw((A72 + "c").encode(), truncated.encode()):
    add("bcrypt-2b", lib("bcrypt"), truncated, A72, hashed=A72 + "b",
        wrong=[A72 + "b", A72 + "c"],
        note="made by a bcrypt that silently truncates to 72 bytes, and which "
             "itself accepts 72*a+c for it; keyhold refuses every input over 72 "
             "bytes, including the one that was hashed (KDF-03)")

# ---- passlib PBKDF2 -------------------------------------------------------
for name, handler, rounds in (("passlib-pbkdf2-sha256", ph.pbkdf2_sha256, 1000),
                              ("passlib-pbkdf2-sha512", ph.pbkdf2_sha512, 2000),
                              ("passlib-pbkdf2-sha1", ph.pbkdf2_sha1, 5000)):
    for pw in PASSWORDS.values():
        add(name, lib("passlib"), handler.using(rounds=rounds).hash(pw), pw)
add("passlib-pbkdf2-sha256", lib("passlib"),
    ph.pbkdf2_sha256.using(rounds=1234, salt_size=8).hash(PASSWORDS["ascii"]), PASSWORDS["ascii"],
    note="8-byte salt, the shortest keyhold accepts")

# ---- passlib scrypt -------------------------------------------------------
for pw in PASSWORDS.values():
    add("passlib-scrypt", lib("passlib"), ph.scrypt.using(rounds=10, block_size=8, parallelism=1).hash(pw), pw)
add("passlib-scrypt", lib("passlib"),
    ph.scrypt.using(rounds=9, block_size=4, parallelism=2).hash(PASSWORDS["non-ascii"]), PASSWORDS["non-ascii"])

# ---- Django (passlib's django_* handlers write Django's exact format) --------
for pw in PASSWORDS.values():
    add("django-pbkdf2-sha256", "passlib %s (django_pbkdf2_sha256)" % VERSIONS["passlib"],
        ph.django_pbkdf2_sha256.using(rounds=1000, salt_size=22).hash(pw), pw)
    add("django-pbkdf2-sha1", "passlib %s (django_pbkdf2_sha1)" % VERSIONS["passlib"],
        ph.django_pbkdf2_sha1.using(rounds=1000, salt_size=12).hash(pw), pw)

# ---- Werkzeug -------------------------------------------------------------
for digest, iterations in (("sha256", 1000), ("sha512", 1500), ("sha1", 2000)):
    for pw in PASSWORDS.values():
        add("werkzeug-pbkdf2-" + digest, lib("werkzeug"),
            security.generate_password_hash(pw, method="pbkdf2:%s:%d" % (digest, iterations)), pw)
add("werkzeug-pbkdf2-sha256", lib("werkzeug"),
    security.generate_password_hash(PASSWORDS["ascii"], method="pbkdf2:sha256:1000", salt_length=8),
    PASSWORDS["ascii"], note="salt_length=8, the default of Werkzeug < 2.0")


def werkzeug3_scrypt(password, n, r, p, salt_length=16):
    """Werkzeug 3.1 generate_password_hash(password, "scrypt:n:r:p"), copied
    from src/werkzeug/security.py (gen_salt and the scrypt branch of
    _hash_internal), for Werkzeug versions that predate scrypt."""
    salt = security.gen_salt(salt_length)
    salt_bytes = salt.encode()
    password_bytes = password.encode()
    maxmem = 132 * n * r * p  # ideally 128, but some extra seems needed
    h = hashlib.scrypt(password_bytes, salt=salt_bytes, n=n, r=r, p=p, maxmem=maxmem).hex()
    return f"scrypt:{n}:{r}:{p}${salt}${h}"


def werkzeug_scrypt(password, n, r, p):
    if int(VERSIONS["werkzeug"].split(".")[0]) >= 3:
        return lib("werkzeug"), security.generate_password_hash(password, method="scrypt:%d:%d:%d" % (n, r, p))
    return ("werkzeug 3.1 scrypt branch copied verbatim (installed werkzeug %s predates scrypt)"
            % VERSIONS["werkzeug"], werkzeug3_scrypt(password, n, r, p))


for pw in PASSWORDS.values():
    library, enc = werkzeug_scrypt(pw, 1024, 8, 1)
    add("werkzeug-scrypt", library, enc, pw)
library, enc = werkzeug_scrypt(PASSWORDS["ascii"], 512, 4, 2)
add("werkzeug-scrypt", library, enc, PASSWORDS["ascii"])

# ---- Argon2id, verified by keyhold's own PHC parser -------------------------
for pw in PASSWORDS.values():
    add("argon2id", lib("argon2-cffi"),
        argon2.PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1, hash_len=16, salt_len=16).hash(pw),
        pw, normalizing=True)
add("argon2id", lib("argon2-cffi"),
    argon2.PasswordHasher(time_cost=3, memory_cost=2048, parallelism=2, hash_len=32, salt_len=16).hash(PASSWORDS["ascii"]),
    PASSWORDS["ascii"], normalizing=True)
add("argon2id", "passlib %s (argon2, argon2-cffi backend)" % VERSIONS["passlib"],
    ph.argon2.using(type="ID", memory_cost=1024, time_cost=2, parallelism=1).hash(PASSWORDS["non-ascii"]),
    PASSWORDS["non-ascii"], normalizing=True)


def argon2_cli(pw, salt, t, k, p, length):
    # The CLI reads the password from stdin, every byte up to EOF (a
    # trailing newline would be part of it), and takes the salt as argv.
    out = subprocess.run(
        ["argon2", salt, "-id", "-t", str(t), "-k", str(k), "-p", str(p), "-l", str(length), "-e"],
        input=pw.encode(), capture_output=True, check=True, timeout=60)
    return out.stdout.decode().strip()


for pw in PASSWORDS.values():
    salt = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
    add("argon2id", "argon2 CLI %s" % VERSIONS["argon2-cli"], argon2_cli(pw, salt, 2, 1024, 1, 32), pw, normalizing=True)



# ---- Django's Argon2PasswordHasher, by Django itself --------------------------
# "argon2" + argon2-cffi's encoded string (from its leading "$"). Django
# hashes the UTF-8 bytes as given, so only those verify in keyhold (no NFKC
# try), like the other imported formats. Low costs keep the tests fast; the
# format and the code path are those of Django's defaults (m=102400, t=2,
# p=8), which keyhold's DefaultLimits admit.
django_settings.configure()
from django.contrib.auth.hashers import Argon2PasswordHasher  # noqa: E402


class DjangoArgon2Low(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 1024
    parallelism = 2


django_argon2 = DjangoArgon2Low()
for pw in PASSWORDS.values():
    add("django-argon2", "django %s (Argon2PasswordHasher, t=2, m=1024, p=2)" % VERSIONS["django"],
        django_argon2.encode(pw, django_argon2.salt()), pw)


PASSLIB_HANDLERS = {
    "passlib-pbkdf2-sha256": ph.pbkdf2_sha256, "passlib-pbkdf2-sha512": ph.pbkdf2_sha512,
    "passlib-pbkdf2-sha1": ph.pbkdf2_sha1, "passlib-scrypt": ph.scrypt,
    "django-pbkdf2-sha256": ph.django_pbkdf2_sha256, "django-pbkdf2-sha1": ph.django_pbkdf2_sha1,
}


def library_verifies(f):
    """The making library's own verdict on the fixture's password."""
    enc, pw = f["encoded"], f["password"]
    fmt = f["format"]
    if fmt.startswith("bcrypt"):
        return bcrypt.checkpw(pw.encode(), enc.encode())
    if fmt == "argon2id":
        try:
            return argon2.PasswordHasher().verify(enc, pw)
        except argon2.exceptions.VerifyMismatchError:
            return False
    if fmt == "werkzeug-scrypt" and int(VERSIONS["werkzeug"].split(".")[0]) < 3:
        method, salt, h = enc.split("$", 2)
        n, r, p = map(int, method.split(":")[1:])
        return hashlib.scrypt(pw.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p).hex() == h
    if fmt.startswith("werkzeug"):
        return security.check_password_hash(enc, pw)
    if fmt == "django-argon2":
        return django_argon2.verify(pw, enc)
    return PASSLIB_HANDLERS[fmt].verify(pw, enc)


for f in fixtures:
    if not library_verifies(f):
        sys.exit("make_fixtures: the library does not verify its own fixture %r" % f["encoded"])

json.dump({
    "generated_by": "kdf/testdata/legacy/make_fixtures.py",
    "versions": VERSIONS,
    "fixtures": fixtures,
}, sys.stdout, indent=1, ensure_ascii=True)
sys.stdout.write("\n")
