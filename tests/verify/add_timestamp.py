#!/usr/bin/env python3
"""RFC 3161 signature timestamps in a CMS SignedData, with asn1crypto (tests/common/signing.rs).

SignerInfos are numbered from 0 in encoded order. That is DER order, the SET OF sorted by the
encodings, not the order the signers were given to `openssl cms -sign` (OpenSSL sorts too).

    add_timestamp.py signature CMS.der INDEX
        Prints one JSON object for SignerInfo INDEX:
            signers     how many SignerInfos the SignedData has
            signature   the value of its `signature` OCTET STRING, hex
            sha256      SHA-256 of that value, hex: the messageImprint a timestamp over the
                        signature carries (RFC 3161 appendix A)

    add_timestamp.py insert CMS.der INDEX TOKEN.der OUT.der
        Adds TOKEN.der (a TimeStampToken: a ContentInfo holding a SignedData over a TSTInfo) to the
        unsignedAttrs of SignerInfo INDEX as the attribute id-aa-signatureTimeStampToken
        (1.2.840.113549.1.9.16.2.14, a SET holding the token), after any unsigned attributes the
        SignerInfo already has, and writes the ContentInfo to OUT.der. Only the containers of the
        change are re-encoded (definite lengths, SET OFs sorted for DER: the SignerInfo may move
        among the others, the new attribute among its unsigned attributes); everything else, the
        signed attributes and the token among them, keeps its bytes, which the script checks
        before writing. Prints {"index": the SignerInfo's position in OUT.der, "signers": count}.

    add_timestamp.py show CMS.der
        Prints one JSON object: {"signers": [SIGNER...]}, each SIGNER
            sid              {"type": "issuer_and_serial_number", "issuer": asn1crypto's
                              human_friendly form ("Common Name: Foreign Root"), "issuer_der":
                              hex, "serial": lowercase hex} or {"type": "subject_key_identifier",
                              "key_id": hex}
            digest_algorithm, signature_algorithm   dotted OIDs
            signed_attrs     [dotted OID...] in encoded order, or null when absent
            signature_sha256 SHA-256 of the signature value, hex
            unsigned_attrs   [{"oid", "name", "values": [DER hex...]}], or null when absent
            timestamps       for each id-aa-signatureTimeStampToken value, its TSTInfo:
                             {"hash_algorithm": dotted OID, "message_imprint": hex,
                              "gen_time": ISO 8601, "serial": decimal string, "policy": dotted OID}

Exit status: 0 on success, 2 when CMS.der (or TOKEN.der) cannot be parsed as what it should be,
1 on any other failure.
"""

import hashlib
import json
import sys

from asn1crypto import cms, core, tsp  # noqa: F401 (tsp: TSTInfo inside tokens)

TIMESTAMP_ATTR = "1.2.840.113549.1.9.16.2.14"
PARSE_FAILURE = 2
# What of a SignedData and of a SignerInfo a timestamp must leave alone.
OUTSIDE_SIGNER_INFOS = (
    "version",
    "digest_algorithms",
    "encap_content_info",
    "certificates",
    "crls",
)
SIGNED_PARTS = (
    "version",
    "sid",
    "digest_algorithm",
    "signed_attrs",
    "signature_algorithm",
    "signature",
)


class ParseError(Exception):
    pass


def load_signed_data(path):
    with open(path, "rb") as f:
        return load_signed_data_bytes(f.read(), path)


def load_signed_data_bytes(data, what="the CMS"):
    """The ContentInfo and its SignedData, checked to decode in full first, so that a bad encoding
    fails here. Each unsigned attribute is decoded from its own bytes: asn1crypto takes seconds
    for `.native` over a SignedData holding tokens, and a dump of anything fully decoded re-checks
    every descendant for changes, so what is returned is loaded afresh."""
    try:
        check = cms.ContentInfo.load(data, strict=True)
        if check["content_type"].dotted != "1.2.840.113549.1.7.2":
            raise ParseError(f"content type {check['content_type'].dotted}, not signedData")
        signed = check["content"]
        for name in OUTSIDE_SIGNER_INFOS:
            signed[name].native
        for signer in signed["signer_infos"]:
            for name in SIGNED_PARTS:
                signer[name].native
            if not isinstance(signer["unsigned_attrs"], core.Void):
                for attr in signer["unsigned_attrs"]:
                    if attr["type"].dotted == TIMESTAMP_ATTR:
                        for value in attr["values"]:
                            load_token(value.dump(), "a timestamp token already there")
                    else:
                        cms.CMSAttribute.load(attr.dump()).native
        info = cms.ContentInfo.load(data, strict=True)
    except ParseError:
        raise
    except Exception as e:  # asn1crypto raises ValueError, TypeError and others on bad input
        raise ParseError(f"{what}: not a CMS SignedData: {e}") from e
    return info, info["content"]


def load_token(data, what="the token"):
    """A TimeStampToken, checked to decode in full, freshly loaded."""
    try:
        check = cms.ContentInfo.load(data, strict=True)
        if check["content_type"].dotted != "1.2.840.113549.1.7.2":
            raise ParseError(f"{what} is not a SignedData")
        tst = check["content"]["encap_content_info"]
        if tst["content_type"].dotted != "1.2.840.113549.1.9.16.1.4":
            raise ParseError(f"{what} holds {tst['content_type'].dotted}, not a TSTInfo")
        check.native
        tst["content"].parsed.native
        return cms.ContentInfo.load(data, strict=True)
    except ParseError:
        raise
    except Exception as e:
        raise ParseError(f"{what}: not a TimeStampToken: {e}") from e


def signer_at(signed, index):
    signers = signed["signer_infos"]
    if not 0 <= index < len(signers):
        raise SystemExit(f"no SignerInfo {index}: the SignedData has {len(signers)}")
    return signers[index]


def signature_value(signer):
    return signer["signature"].native


def cmd_signature(path, index):
    _, signed = load_signed_data(path)
    sig = signature_value(signer_at(signed, int(index)))
    return {
        "signers": len(signed["signer_infos"]),
        "signature": sig.hex(),
        "sha256": hashlib.sha256(sig).hexdigest(),
    }


def cmd_insert(path, index, token_path, out_path):
    index = int(index)
    info, signed = load_signed_data(path)
    with open(token_path, "rb") as f:
        token_der = f.read()
    token = load_token(token_der, token_path)

    before = [s.dump() for s in signed["signer_infos"]]
    before_outside = {name: signed[name].dump() for name in OUTSIDE_SIGNER_INFOS}

    signer = signer_at(signed, index)
    before_signed_parts = {name: signer[name].dump() for name in SIGNED_PARTS}
    # The attributes already there, each loaded afresh from its bytes (see load_signed_data_bytes).
    existing = signer["unsigned_attrs"]
    attrs = []
    if not isinstance(existing, core.Void):
        attrs = [cms.CMSAttribute.load(a.dump()) for a in existing]
    attrs.append(
        cms.CMSAttribute({"type": TIMESTAMP_ATTR, "values": cms.SetOfContentInfo([token])})
    )
    signer["unsigned_attrs"] = cms.CMSAttributes(attrs)
    out = info.dump()

    # The result differs from the input only in that SignerInfo's unsignedAttrs (the SET OFs on
    # the way, signerInfos among them, are sorted again for DER, so positions may change).
    _, again = load_signed_data_bytes(out)
    for name, der in before_outside.items():
        assert again[name].dump() == der, f"{name} changed"
    after = [s.dump() for s in again["signer_infos"]]
    assert sorted(before[:index] + before[index + 1 :]) == sorted(
        d for d in after if d in before
    ), "another SignerInfo changed"
    changed = [i for i, d in enumerate(after) if d not in before]
    assert len(changed) == 1, "not exactly one SignerInfo changed"
    stamped = again["signer_infos"][changed[0]]
    for name, der in before_signed_parts.items():
        assert stamped[name].dump() == der, f"{name} of the SignerInfo changed"
    tokens = [
        v.dump()
        for a in stamped["unsigned_attrs"]
        if a["type"].dotted == TIMESTAMP_ATTR
        for v in a["values"]
    ]
    assert token_der in tokens, "the token did not keep its bytes"

    with open(out_path, "wb") as f:
        f.write(out)
    return {"index": changed[0], "signers": len(after)}


def sid_json(sid):
    if sid.name == "issuer_and_serial_number":
        return {
            "type": sid.name,
            "issuer": sid.chosen["issuer"].human_friendly,
            "issuer_der": sid.chosen["issuer"].dump().hex(),
            "serial": format(sid.chosen["serial_number"].native, "x"),
        }
    return {"type": sid.name, "key_id": sid.chosen.native.hex()}


def tst_json(token):
    tst = token["content"]["encap_content_info"]["content"].parsed
    return {
        "hash_algorithm": tst["message_imprint"]["hash_algorithm"]["algorithm"].dotted,
        "message_imprint": tst["message_imprint"]["hashed_message"].native.hex(),
        "gen_time": tst["gen_time"].native.isoformat(),
        "serial": str(tst["serial_number"].native),
        "policy": tst["policy"].dotted,
    }


def cmd_show(path):
    _, signed = load_signed_data(path)
    signers = []
    for s in signed["signer_infos"]:
        signed_attrs = s["signed_attrs"]
        unsigned = s["unsigned_attrs"]
        entry = {
            "sid": sid_json(s["sid"]),
            "digest_algorithm": s["digest_algorithm"]["algorithm"].dotted,
            "signature_algorithm": s["signature_algorithm"]["algorithm"].dotted,
            "signed_attrs": (
                None
                if isinstance(signed_attrs, core.Void)
                else [a["type"].dotted for a in signed_attrs]
            ),
            "signature_sha256": hashlib.sha256(signature_value(s)).hexdigest(),
            "unsigned_attrs": None,
            "timestamps": [],
        }
        if not isinstance(unsigned, core.Void):
            entry["unsigned_attrs"] = []
            for a in unsigned:
                entry["unsigned_attrs"].append(
                    {
                        "oid": a["type"].dotted,
                        "name": a["type"].native,
                        "values": [v.dump().hex() for v in a["values"]],
                    }
                )
                if a["type"].dotted == TIMESTAMP_ATTR:
                    for v in a["values"]:
                        token = load_token(v.dump(), "a timestamp token")
                        entry["timestamps"].append(tst_json(token))
        signers.append(entry)
    return {"signers": signers}


COMMANDS = {"signature": (cmd_signature, 2), "insert": (cmd_insert, 4), "show": (cmd_show, 1)}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS or len(argv) - 2 != COMMANDS[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 1
    func, _ = COMMANDS[argv[1]]
    import shutil, time
    t0 = time.time()
    try:
        result = func(*argv[2:])
        if time.time() - t0 > 3 and argv[1] == "insert":
            shutil.copy(argv[2], "/tmp/sigx/slow_in.der"); shutil.copy(argv[4], "/tmp/sigx/slow_tok.der"); open("/tmp/sigx/slow_idx", "w").write(argv[3])
    except AssertionError:
        shutil.copy(argv[2], "/tmp/sigx/fail_in.der"); shutil.copy(argv[4], "/tmp/sigx/fail_tok.der"); open("/tmp/sigx/fail_idx", "w").write(argv[3])
        raise
    except ParseError as e:
        print(e, file=sys.stderr)
        return PARSE_FAILURE
    if result is not None:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
