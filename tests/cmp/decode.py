"""Decode the CMP requests Vouch sent with an independent decoder (pyasn1-alt-modules, RFC 9480
PKIMessage, DER decoder: strict about the encoding) and print, per message, a JSON summary of
what the tests check: body type, pvno, transactionID, nonces, protectionAlg, senderKID,
implicitConfirm, the SHA-256 of the body's DER (bodySha256), and the body's fields (p10cr CSR, CRMF template and POP, certConf, pollReq, rr).

Usage: decode.py FILE.der...   Exits non-zero if a message does not decode or has bytes left over.
"""
import hashlib
import json
import sys

from pyasn1.codec.der import decoder, encoder
from pyasn1_alt_modules import rfc9480, rfc5280


def hexs(value):
    return bytes(value).hex()


def content(der):
    """The content octets of one TLV (strips an explicit or implicit context tag)."""
    length = der[1]
    if length < 0x80:
        return der[2:]
    n = length & 0x7F
    return der[2 + n:]


def summary(der):
    msg, rest = decoder.decode(der, asn1Spec=rfc9480.PKIMessage())
    if rest:
        raise ValueError("bytes after the PKIMessage")
    if encoder.encode(msg) != der:
        raise ValueError("not DER: re-encoding differs")
    header = msg["header"]
    body = msg["body"]
    kind = body.getName()
    out = {
        "body": kind,
        "bodySha256": hashlib.sha256(encoder.encode(body)).hexdigest(),
        "pvno": int(header["pvno"]),
        "sender": header["sender"].getName(),
        "transactionID": hexs(header["transactionID"]),
        "senderNonce": hexs(header["senderNonce"]),
        "recipNonce": hexs(header["recipNonce"]) if header["recipNonce"].isValue else None,
        "senderKID": hexs(header["senderKID"]) if header["senderKID"].isValue else None,
        "protectionAlg": str(header["protectionAlg"]["algorithm"]),
        "protected": msg["protection"].isValue,
        "extraCerts": len(msg["extraCerts"]) if msg["extraCerts"].isValue else 0,
        "implicitConfirm": header["generalInfo"].isValue
        and any(str(i["infoType"]) == "1.3.6.1.5.5.7.4.13" for i in header["generalInfo"]),
    }
    body_value = body.getComponent()
    if kind == "p10cr":
        out["csr"] = hexs(content(encoder.encode(body_value)))
    elif kind in ("ir", "cr"):
        req = body_value[0]
        template = req["certReq"]["certTemplate"]
        out["certReqId"] = int(req["certReq"]["certReqId"])
        out["pop"] = req["popo"].getName()
        out["publicKey"] = hexs(content(encoder.encode(template["publicKey"])))
        out["subject"] = template["subject"].isValue
        out["extensions"] = sorted(str(e["extnID"]) for e in template["extensions"])
    elif kind == "certConf":
        out["certReqId"] = int(body_value[0]["certReqId"])
        out["certHash"] = hexs(body_value[0]["certHash"])
        out["statusInfo"] = body_value[0]["statusInfo"].isValue
    elif kind == "pollReq":
        out["certReqId"] = int(body_value[0]["certReqId"])
    elif kind == "rr":
        details = body_value[0]
        out["serial"] = "%x" % int(details["certDetails"]["serialNumber"])
        out["issuer"] = details["certDetails"]["issuer"].isValue
        for ext in details["crlEntryDetails"]:
            if ext["extnID"] == rfc5280.id_ce_cRLReasons:
                reason, _ = decoder.decode(ext["extnValue"], asn1Spec=rfc5280.CRLReason())
                out["reason"] = int(reason)
    elif kind == "genm":
        out["infoTypes"] = [str(i["infoType"]) for i in body_value]
    return out


def main():
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            print(json.dumps(summary(f.read())))


if __name__ == "__main__":
    main()
