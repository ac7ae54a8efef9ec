#!/usr/bin/python3
"""Secret-slot interop helper for vault's tests (TestSecretSlotPython).

An independent implementation of FORMAT.md section 3.1 (vault record) and
3.2 kind 3 (secret slot), written from FORMAT.md with Python's
cryptography (HKDF, AESGCM) and hashlib. Reads one JSON object on stdin:

  {"vectors": <the object of vault/testdata/secret_slot_vectors.json>,
   "fresh": {"user_id", "record_hex", "credential_id_hex", "secret_hex"}}

and writes one JSON object on stdout:

  {"slots": [every field of vectors.slots[i], recomputed from its inputs],
   "unlocked": [master key hex from record_hex with each slot's secret],
   "negative": {name: "unlock_failed" or the master key hex it gave},
   "fresh": master key hex of the fresh vault}

Nothing reaches this script through its command line, and it prints no
secret but what it was asked to compute.
"""
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SLOT_AAD_LABEL = b"keyhold/v1/vault/slot\x00"
SECRET_KEK_LABEL = b"keyhold/v1/vault/secret-kek\x00"
SECRET_SLOT_ID_LABEL = b"keyhold/v1/vault/secret-slot-id\x00"
KIND_SECRET = 3


class UnlockFailed(Exception):
    pass


def slot_id(credential_id):
    return hashlib.sha256(SECRET_SLOT_ID_LABEL + credential_id).digest()[:16]


def kek_info(user, credential_id):
    return SECRET_KEK_LABEL + struct.pack(">H", len(user)) + user + credential_id


def derive_kek(secret, salt, user, credential_id):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=kek_info(user, credential_id)).derive(secret)


def slot_header(kind, sid, key_version, params):
    return bytes([kind]) + sid + struct.pack(">IH", key_version, len(params)) + params


def slot_aad(user, header):
    return SLOT_AAD_LABEL + struct.pack(">H", len(user)) + user + header


def make_slot(user, key_version, mk, credential_id, secret, salt, nonce):
    sid = slot_id(credential_id)
    params = bytes([16]) + salt
    header = slot_header(KIND_SECRET, sid, key_version, params)
    aad = slot_aad(user, header)
    kek = derive_kek(secret, salt, user, credential_id)
    wrapped = nonce + AESGCM(kek).encrypt(nonce, mk, aad)
    return {
        "slot_id_hex": sid.hex(),
        "info_hex": kek_info(user, credential_id).hex(),
        "kek_hex": kek.hex(),
        "aad_hex": aad.hex(),
        "wrapped_hex": wrapped.hex(),
        "slot_hex": (header + struct.pack(">H", len(wrapped)) + wrapped).hex(),
    }


def decode_record(b):
    """FORMAT.md 3.1: returns (key version, [(kind, id, key version, params, wrapped)])."""
    off = 0

    def take(n):
        nonlocal off
        if off + n > len(b):
            raise UnlockFailed("length runs past the end")
        v = b[off:off + n]
        off += n
        return v

    if take(4) != b"KHV\x01":
        raise UnlockFailed("magic")
    key_version = struct.unpack(">I", take(4))[0]
    n = take(1)[0]
    if key_version == 0 or not 1 <= n <= 64:
        raise UnlockFailed("header")
    slots = []
    for _ in range(n):
        kind = take(1)[0]
        sid = take(16)
        kv = struct.unpack(">I", take(4))[0]
        params = take(struct.unpack(">H", take(2))[0])
        wrapped = take(struct.unpack(">H", take(2))[0])
        if not 1 <= kind <= 4 or kv == 0 or len(params) > 1024 or len(wrapped) > 4096:
            raise UnlockFailed("slot")
        slots.append((kind, sid, kv, params, wrapped))
    if off != len(b):
        # The retired-key section is not needed here; a record with one
        # would be read further. These vaults have none.
        raise UnlockFailed("trailing bytes")
    return key_version, slots


def unlock(record, user, credential_id, secret):
    key_version, slots = decode_record(record)
    sid = slot_id(credential_id)
    for kind, s_id, kv, params, wrapped in slots:
        if kind != KIND_SECRET or kv != key_version or s_id != sid:
            continue
        if len(params) != 17 or params[0] != 16 or len(wrapped) != 60:
            raise UnlockFailed("malformed secret slot")
        kek = derive_kek(secret, params[1:], user, credential_id)
        aad = slot_aad(user, slot_header(kind, s_id, kv, params))
        try:
            return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)
        except InvalidTag:
            raise UnlockFailed("wrong secret")
    raise UnlockFailed("no slot")


def try_unlock(record_hex, user_id, credential_id_hex, secret_hex):
    try:
        return unlock(bytes.fromhex(record_hex), user_id.encode("utf-8"),
                      bytes.fromhex(credential_id_hex), bytes.fromhex(secret_hex)).hex()
    except UnlockFailed:
        return "unlock_failed"


def main():
    req = json.load(sys.stdin)
    vec = req["vectors"]
    user = vec["user_id"].encode("utf-8")
    mk = bytes.fromhex(vec["master_key_hex"])
    out = {"slots": [], "unlocked": [], "negative": {}}
    for s in vec["slots"]:
        inputs = {k: s[k] for k in ("credential_id_hex", "secret_hex", "salt_hex", "nonce_hex")}
        made = make_slot(user, vec["key_version"], mk, bytes.fromhex(s["credential_id_hex"]),
                         bytes.fromhex(s["secret_hex"]), bytes.fromhex(s["salt_hex"]), bytes.fromhex(s["nonce_hex"]))
        out["slots"].append({**inputs, **made})
        out["unlocked"].append(try_unlock(vec["record_hex"], vec["user_id"], s["credential_id_hex"], s["secret_hex"]))
    for n in vec["negative"]:
        out["negative"][n["name"]] = try_unlock(n["record_hex"], n["user_id"], n["credential_id_hex"], n["secret_hex"])
    f = req["fresh"]
    out["fresh"] = try_unlock(f["record_hex"], f["user_id"], f["credential_id_hex"], f["secret_hex"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
