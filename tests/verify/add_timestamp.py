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
        (1.2.840.113549.1.9.16.2.14, a SET holding the token), besides any unsigned attributes the
        SignerInfo already has, and writes the ContentInfo to OUT.der. Only the containers of the
        change are encoded anew (definite lengths, SET OFs sorted for DER: the SignerInfo may move
        among the others, the new attribute among its unsigned attributes); every other byte, the
        signed attributes, the other SignerInfos and the token among them, is copied as it was,
        which the script checks before writing. Prints {"index": the SignerInfo's position in
        OUT.der, "signers": how many}.

    add_timestamp.py show CMS.der
        Prints one JSON object: {"signers": [SIGNER...]}, each SIGNER
            sid              {"type": "issuer_and_serial_number", "issuer": asn1crypto's
                              human_friendly form ("Common Name: Foreign Root"), "issuer_der":
                              hex, "serial": lowercase hex} or {"type": "subject_key_identifier",
                              "key_id": hex}
            digest_algorithm, signature_algorithm   dotted OIDs
            signed_attrs     [dotted OID...] in encoded order, or null when absent
            signature_sha256 SHA-256 of the signature value, hex
            unsigned_attrs   [{"oid", "name", "values": [hex of each value's bytes as encoded]}],
                             or null when absent
            timestamps       for each id-aa-signatureTimeStampToken value, its TSTInfo:
                             {"hash_algorithm": dotted OID, "message_imprint": hex,
                              "gen_time": ISO 8601, "serial": decimal string, "policy": dotted OID}

asn1crypto reads; the bytes are cut and joined with its TLV parser (asn1crypto.parser), never
with `.dump()` of something parsed: asn1crypto re-checks every decoded descendant for changes on
a dump, which takes minutes on a SignedData holding tokens and may re-encode (re-sort) parts it
believes changed, e.g. the certificates SET of an OpenSSL timestamp token.

Exit status: 0 on success, 2 when CMS.der (or TOKEN.der) cannot be parsed as what it should be,
1 on any other failure.
"""

import hashlib
import json
import sys

from asn1crypto import cms, core, parser, tsp  # noqa: F401 (tsp: TSTInfo inside tokens)

SIGNED_DATA = "1.2.840.113549.1.7.2"
TST_INFO = "1.2.840.113549.1.9.16.1.4"
TIMESTAMP_ATTR = "1.2.840.113549.1.9.16.2.14"
PARSE_FAILURE = 2

UNIVERSAL, CONTEXT = 0, 2
CONSTRUCTED = 1
SEQUENCE, SET = 16, 17
SIGNER_INFO_FIELDS = (
    "version",
    "sid",
    "digest_algorithm",
    "signed_attrs",
    "signature_algorithm",
    "signature",
)


class ParseError(Exception):
    pass


# The TLV layer: values as the byte strings they are encoded as.


def tlv(data):
    """(class, method, tag, contents) of the one value `data` is (no trailing bytes)."""
    class_, method, tag, _header, contents, _trailer = parser.parse(data, strict=True)
    return class_, method, tag, contents


def children(contents):
    """The encodings of the values one after another in `contents`."""
    out, pointer = [], 0
    while pointer < len(contents):
        length = parser.peek(contents[pointer:])
        out.append(contents[pointer : pointer + length])
        pointer += length
    return out


def constructed(class_, tag, parts):
    """A constructed value, definite length, holding `parts` as given."""
    return parser.emit(class_, CONSTRUCTED, tag, b"".join(parts))


class RawSignedData:
    """A ContentInfo holding a SignedData, cut into the encodings of its parts."""

    def __init__(self, data):
        class_, _, tag, contents = tlv(data)
        if (class_, tag) != (UNIVERSAL, SEQUENCE):
            raise ValueError("the ContentInfo is not a SEQUENCE")
        parts = children(contents)
        if len(parts) != 2:
            raise ValueError("the ContentInfo does not have two fields")
        self.content_type = parts[0]
        class_, _, tag, explicit = tlv(parts[1])
        if (class_, tag) != (CONTEXT, 0):
            raise ValueError("the ContentInfo's content is not [0]")
        class_, _, tag, contents = tlv(explicit)
        if (class_, tag) != (UNIVERSAL, SEQUENCE):
            raise ValueError("the SignedData is not a SEQUENCE")
        fields = children(contents)
        class_, _, tag, contents = tlv(fields[-1])
        if (class_, tag) != (UNIVERSAL, SET):
            raise ValueError("signerInfos is not a SET")
        # version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls
        self.before_signer_infos = fields[:-1]
        self.signer_infos = children(contents)

    def encode(self, signer_infos):
        signed_data = constructed(
            UNIVERSAL,
            SEQUENCE,
            self.before_signer_infos + [constructed(UNIVERSAL, SET, sorted(signer_infos))],
        )
        return constructed(
            UNIVERSAL, SEQUENCE, [self.content_type, constructed(CONTEXT, 0, [signed_data])]
        )


def signer_fields(signer_info):
    """The SignerInfo's field encodings but unsignedAttrs, and its unsigned attributes' encodings
    (None when absent)."""
    _, _, _, contents = tlv(signer_info)
    fields = children(contents)
    class_, _, tag, contents = tlv(fields[-1])
    if (class_, tag) == (CONTEXT, 1):
        return fields[:-1], children(contents)
    return fields, None


def attribute_parts(attribute):
    """(dotted OID, [each value's encoding]) of an Attribute."""
    oid, values = children(tlv(attribute)[3])
    return core.ObjectIdentifier.load(oid).dotted, children(tlv(values)[3])


# Reading, with asn1crypto.


def load_signed_data(path):
    with open(path, "rb") as f:
        return load_signed_data_bytes(f.read(), path)


def load_signed_data_bytes(data, what="the CMS"):
    """(RawSignedData, asn1crypto's SignedData), checked to decode in full, each unsigned
    attribute on its own (`.native` over a SignedData holding tokens takes seconds)."""
    try:
        raw = RawSignedData(data)
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].dotted != SIGNED_DATA:
            raise ParseError(f"{what}: content type {info['content_type'].dotted}, not signedData")
        signed = info["content"]
        for name in ("version", "digest_algorithms", "encap_content_info", "certificates", "crls"):
            signed[name].native
        if len(signed["signer_infos"]) != len(raw.signer_infos):
            raise ValueError("asn1crypto and the TLV parser count the SignerInfos differently")
        for signer, encoded in zip(signed["signer_infos"], raw.signer_infos):
            for name in SIGNER_INFO_FIELDS:
                signer[name].native
            for attribute in signer_fields(encoded)[1] or []:
                oid, values = attribute_parts(attribute)
                if oid == TIMESTAMP_ATTR:
                    for value in values:
                        load_token(value, "a timestamp token already there")
                else:
                    cms.CMSAttribute.load(attribute).native
    except ParseError:
        raise
    except Exception as e:  # asn1crypto raises ValueError, TypeError and others on bad input
        raise ParseError(f"{what}: not a CMS SignedData: {e}") from e
    return raw, signed


def load_token(data, what="the token"):
    """A TimeStampToken (asn1crypto's ContentInfo), checked to decode in full."""
    try:
        token = cms.ContentInfo.load(data, strict=True)
        if token["content_type"].dotted != SIGNED_DATA:
            raise ParseError(f"{what} is not a SignedData")
        tst = token["content"]["encap_content_info"]
        if tst["content_type"].dotted != TST_INFO:
            raise ParseError(f"{what} holds {tst['content_type'].dotted}, not a TSTInfo")
        token.native
        tst["content"].parsed.native
        return token
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


# The commands.


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
    raw, signed = load_signed_data(path)
    signer_at(signed, index)
    with open(token_path, "rb") as f:
        token = f.read()
    load_token(token, token_path)

    fields, unsigned = signer_fields(raw.signer_infos[index])
    attribute = constructed(
        UNIVERSAL,
        SEQUENCE,
        [core.ObjectIdentifier(TIMESTAMP_ATTR).dump(), constructed(UNIVERSAL, SET, [token])],
    )
    unsigned_attrs = constructed(CONTEXT, 1, sorted((unsigned or []) + [attribute]))
    stamped = constructed(UNIVERSAL, SEQUENCE, fields + [unsigned_attrs])
    others = raw.signer_infos[:index] + raw.signer_infos[index + 1 :]
    out = raw.encode(others + [stamped])

    # The result differs from the input only in that SignerInfo's unsignedAttrs.
    again, _ = load_signed_data_bytes(out, "the result")
    assert again.content_type == raw.content_type
    assert again.before_signer_infos == raw.before_signer_infos, "the SignedData changed"
    assert sorted(again.signer_infos) == sorted(others + [stamped]), "a SignerInfo changed"
    position = again.signer_infos.index(stamped)
    assert signer_fields(again.signer_infos[position])[0] == fields, "the SignerInfo changed"
    tokens = [
        value
        for attribute in signer_fields(again.signer_infos[position])[1]
        for oid, values in [attribute_parts(attribute)]
        if oid == TIMESTAMP_ATTR
        for value in values
    ]
    assert token in tokens, "the token did not keep its bytes"

    with open(out_path, "wb") as f:
        f.write(out)
    return {"index": position, "signers": len(again.signer_infos)}


def sid_json(sid, encoded):
    """The SignerIdentifier `sid`, `encoded` as it is."""
    if sid.name == "issuer_and_serial_number":
        return {
            "type": sid.name,
            "issuer": sid.chosen["issuer"].human_friendly,
            "issuer_der": children(tlv(encoded)[3])[0].hex(),
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
    raw, signed = load_signed_data(path)
    signers = []
    for s, encoded in zip(signed["signer_infos"], raw.signer_infos):
        signed_attrs = s["signed_attrs"]
        entry = {
            "sid": sid_json(s["sid"], signer_fields(encoded)[0][1]),
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
        unsigned = signer_fields(encoded)[1]
        if unsigned is not None:
            entry["unsigned_attrs"] = []
            for attribute in unsigned:
                oid, values = attribute_parts(attribute)
                entry["unsigned_attrs"].append(
                    {
                        "oid": oid,
                        "name": cms.CMSAttributeType(oid).native,
                        "values": [v.hex() for v in values],
                    }
                )
                if oid == TIMESTAMP_ATTR:
                    for value in values:
                        token = load_token(value, "a timestamp token")
                        entry["timestamps"].append(tst_json(token))
        signers.append(entry)
    return {"signers": signers}


COMMANDS = {"signature": (cmd_signature, 2), "insert": (cmd_insert, 4), "show": (cmd_show, 1)}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS or len(argv) - 2 != COMMANDS[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 1
    func, _ = COMMANDS[argv[1]]
    try:
        result = func(*argv[2:])
    except ParseError as e:
        print(e, file=sys.stderr)
        return PARSE_FAILURE
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
