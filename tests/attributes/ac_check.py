#!/usr/bin/env python3
"""An RFC 5755 attribute certificate as asn1crypto and cryptography read it (tests/common/ac_tools.rs).

    ac_check.py AC.der AA.pem

AC.der is DER (or PEM "ATTRIBUTE CERTIFICATE"), AA.pem the issuing AA's certificate (PEM or DER).
Parses the AC with asn1crypto.cms.AttributeCertificateV2 (strictly: no trailing data, and `.native`
on the whole structure, so that every field is decoded), decodes the extension values asn1crypto
does not know (targetInformation, noRevAvail) with the RFC 5755 syntax below, verifies the
signature over the DER of acinfo with the AA certificate's public key (cryptography), and prints
one JSON object:

    version                 the DER INTEGER (1 for v2)      version_name  "v2"
    serial                  lowercase hex, no leading zeros ("0" for zero; "-" before a negative)
    holder                  {"base_certificate_id": {"issuer": [NAME...], "serial": hex} | null,
                             "entity_name": [NAME...] | null, "object_digest_info": {...} | null}
    issuer                  {"form": "v2_form" | "v1_form", "names": [NAME...]}
    signature_algorithm     {"oid", "name", "hash"} of the outer signatureAlgorithm
    acinfo_signature_algorithm  the same for acinfo.signature
    signature_algorithms_match  both encode the same AlgorithmIdentifier (RFC 5755 4.2.4)
    not_before, not_after   epoch seconds
    not_before_text, not_after_text  the GeneralizedTime as encoded, e.g. "20250101000000Z"
    attributes              [{"oid", "name", "values"}]: role values are {"role_name", "role_authority"},
                            group values {"policy_authority", "values"}, others asn1crypto's
                            decoding (bytes as hex) or the DER of each value as hex
    roles                   every roleName of the role attributes (2.5.4.72), a URI as is
    groups                  every value of the group attributes (1.3.6.1.5.5.7.10.4): strings as is,
                            OIDs dotted, octets hex
    extensions              [{"oid", "name", "critical", "value"}]: targetInformation a list of
                            {"type": "target_name"|"target_group"|"target_cert", "value"},
                            noRevAvail null, cRLDistributionPoints the list of URIs,
                            authorityKeyIdentifier {"key_identifier": hex, "authority_cert_issuer",
                            "authority_cert_serial_number"}, others asn1crypto's decoding or the
                            extnValue as hex
    targets                 every targetName/targetGroup name of targetInformation (2.5.29.55)
    target_info_critical    true | false (false when absent)
    no_rev_avail            extension 2.5.29.56 present (its value must be a DER NULL)
    crl_urls                URIs of cRLDistributionPoints (2.5.29.31)
    authority_key_identifier  keyIdentifier hex, or null
    aa_subject_key_identifier the AA certificate's subjectKeyIdentifier hex, or null
    critical_extensions     sorted OIDs of the critical extensions
    signature_valid         true | false
    signature_error         why not, when signature_valid is false

A NAME is a directoryName as an RFC 4514 string (CN=..,O=..,C=..; cryptography's rfc4514_string),
any other GeneralName as "type:value" (e.g. "uniform_resource_identifier:https://..."). URIs are
given exactly as encoded.

Exit 0 when the AC parsed (whatever the signature), 2 with a message on stderr when it did not.
"""

import datetime
import json
import sys

from asn1crypto import cms, core, pem, x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa


# RFC 5755 section 4.3.2, in its IMPLICIT TAGS module: a tagged GeneralName (a CHOICE) is
# explicitly tagged, TargetCert implicitly.
class TargetCert(core.Sequence):
    _fields = [
        ("target_certificate", cms.IssuerSerial),
        ("target_name", asn1_x509.GeneralName, {"optional": True}),
        ("cert_digest_info", cms.ObjectDigestInfo, {"optional": True}),
    ]


class Target(core.Choice):
    _alternatives = [
        ("target_name", asn1_x509.GeneralName, {"explicit": 0}),
        ("target_group", asn1_x509.GeneralName, {"explicit": 1}),
        ("target_cert", TargetCert, {"implicit": 2}),
    ]


class Targets(core.SequenceOf):
    _child_spec = Target


class TargetInformation(core.SequenceOf):
    _child_spec = Targets


OID_TARGET_INFORMATION = "2.5.29.55"
OID_NO_REV_AVAIL = "2.5.29.56"
OID_CRL_DISTRIBUTION_POINTS = "2.5.29.31"
OID_AUTHORITY_KEY_IDENTIFIER = "2.5.29.35"
OID_ROLE = "2.5.4.72"
OID_GROUP = "1.3.6.1.5.5.7.10.4"

EXTENSION_NAMES = {
    OID_TARGET_INFORMATION: "target_information",
    OID_NO_REV_AVAIL: "no_rev_avail",
}


class ParseError(Exception):
    pass


def jsonable(value):
    """asn1crypto's native values made JSON-serialisable (bytes as hex)."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def int_hex(value):
    return ("-" + format(-value, "x")) if value < 0 else format(value, "x")


def rfc4514(name):
    """An asn1crypto Name as an RFC 4514 string, through cryptography's x509.Name."""
    try:
        rdns = []
        for rdn in name.chosen:
            attrs = []
            for ava in rdn:
                value = ava["value"].native
                if not isinstance(value, str):
                    raise ValueError("not a string")
                attrs.append(x509.NameAttribute(x509.ObjectIdentifier(ava["type"].dotted), value))
            rdns.append(x509.RelativeDistinguishedName(attrs))
        return x509.Name(rdns).rfc4514_string()
    except Exception:  # a value cryptography refuses: asn1crypto's own rendering
        return name.human_friendly


def uri_text(uri):
    """A URI exactly as encoded: asn1crypto's .native turns it into an IRI (lowercasing the host,
    decoding percent escapes), which would hide what the issuer wrote."""
    return uri.contents.decode("ascii", "backslashreplace")


def general_name(name):
    if name.name == "directory_name":
        return rfc4514(name.chosen)
    if name.name == "uniform_resource_identifier":
        return f"{name.name}:{uri_text(name.chosen)}"
    return f"{name.name}:{jsonable(name.native)}"


def general_names(names):
    if names is None or isinstance(names, core.Void):
        return None
    return [general_name(n) for n in names]


def plain_name(name):
    """A GeneralName's value alone for a URI (targets, roles, CRL URLs), else general_name."""
    if name.name == "uniform_resource_identifier":
        return uri_text(name.chosen)
    return general_name(name)


def algorithm(alg):
    out = {"oid": alg["algorithm"].dotted, "name": alg["algorithm"].native}
    try:
        out["hash"] = alg.hash_algo
    except ValueError:
        out["hash"] = None
    return out


def generalized_time_text(value):
    return value.contents.decode("ascii")


def epoch(value):
    return int(value.native.timestamp())


def optional(field):
    return None if isinstance(field, core.Void) else field


def parse_targets(value):
    info = TargetInformation.load(value, strict=True)
    info.native  # noqa: B018 - decode every field now
    targets = []
    for group in info:
        for target in group:
            if target.name == "target_cert":
                tc = target.chosen
                targets.append({
                    "type": "target_cert",
                    "value": {
                        "issuer": general_names(tc["target_certificate"]["issuer"]),
                        "serial": int_hex(tc["target_certificate"]["serial"].native),
                        "target_name": None if isinstance(tc["target_name"], core.Void)
                        else general_name(tc["target_name"]),
                    },
                })
            else:
                targets.append({"type": target.name, "value": plain_name(target.chosen)})
    return targets


def parse_extension(ext):
    oid = ext["extn_id"].dotted
    raw = ext["extn_value"].contents
    if oid == OID_TARGET_INFORMATION:
        return parse_targets(raw)
    if oid == OID_NO_REV_AVAIL:
        core.Null.load(raw, strict=True)
        return None
    if oid == OID_CRL_DISTRIBUTION_POINTS:
        urls = []
        for dp in ext["extn_value"].parsed:
            dpn = dp["distribution_point"]
            if not isinstance(dpn, core.Void) and dpn.name == "full_name":
                urls.extend(uri_text(n.chosen) for n in dpn.chosen
                            if n.name == "uniform_resource_identifier")
        return urls
    if oid == OID_AUTHORITY_KEY_IDENTIFIER:
        aki = ext["extn_value"].parsed
        serial = aki["authority_cert_serial_number"].native
        return {
            "key_identifier": jsonable(aki["key_identifier"].native),
            "authority_cert_issuer": general_names(optional(aki["authority_cert_issuer"])),
            "authority_cert_serial_number": None if serial is None else int_hex(serial),
        }
    if ext["extn_id"].native in asn1_x509.Extension._oid_specs:
        return jsonable(ext["extn_value"].parsed.native)
    return raw.hex()


def parse_attribute(attr):
    oid = attr["type"].dotted
    if oid == OID_ROLE:
        values = [{
            "role_name": plain_name(v["role_name"]),
            "role_authority": general_names(optional(v["role_authority"])),
        } for v in attr["values"]]
    elif oid == OID_GROUP:
        values = [{
            "policy_authority": general_names(optional(v["policy_authority"])),
            "values": [ietf_value(x) for x in v["values"]],
        } for v in attr["values"]]
    elif isinstance(attr["values"], cms.SetOfAny):
        values = [v.dump().hex() for v in attr["values"]]
    else:
        values = jsonable(attr["values"].native)
    return {"oid": oid, "name": attr["type"].native, "values": values}


def ietf_value(value):
    if value.name == "oid":
        return value.chosen.dotted
    return jsonable(value.native)


def load_ac(data):
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    try:
        ac = cms.AttributeCertificateV2.load(data, strict=True)
        ac.native  # noqa: B018 - decode every field now, so that a malformed one fails here
        info = ac["ac_info"]
        extensions = [] if isinstance(info["extensions"], core.Void) else list(info["extensions"])
        parsed_extensions = [(ext, parse_extension(ext)) for ext in extensions]
        attributes = [parse_attribute(a) for a in info["attributes"]]
    except Exception as e:  # asn1crypto raises ValueError, TypeError, ...
        raise ParseError(f"{type(e).__name__}: {e}") from e
    return ac, parsed_extensions, attributes


def verify(ac, aa_cert):
    """(valid, error): the signature over the DER of acinfo under the AA certificate's key."""
    tbs = ac["ac_info"].dump()
    signature = ac["signature"].native
    alg = ac["signature_algorithm"]
    key = aa_cert.public_key()
    try:
        sig_algo = alg.signature_algo
        if isinstance(key, ec.EllipticCurvePublicKey) and sig_algo == "ecdsa":
            key.verify(signature, tbs, ec.ECDSA(hash_for(alg.hash_algo)))
        elif isinstance(key, rsa.RSAPublicKey) and sig_algo == "rsassa_pkcs1v15":
            key.verify(signature, tbs, padding.PKCS1v15(), hash_for(alg.hash_algo))
        elif isinstance(key, rsa.RSAPublicKey) and sig_algo == "rsassa_pss":
            params = alg["parameters"]
            mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
            key.verify(signature, tbs,
                       padding.PSS(mgf=padding.MGF1(hash_for(mgf_hash)),
                                   salt_length=params["salt_length"].native),
                       hash_for(params["hash_algorithm"]["algorithm"].native))
        elif isinstance(key, ed25519.Ed25519PublicKey) and sig_algo == "ed25519":
            key.verify(signature, tbs)
        elif isinstance(key, ed448.Ed448PublicKey) and sig_algo == "ed448":
            key.verify(signature, tbs)
        else:
            return False, f"{alg['algorithm'].native} does not go with a {type(key).__name__}"
    except InvalidSignature:
        return False, "InvalidSignature"
    except Exception as e:  # an unknown algorithm, a malformed ECDSA signature, ...
        return False, f"{type(e).__name__}: {e}"
    return True, None


def hash_for(name):
    hashes_by_name = {
        "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
        "sha384": hashes.SHA384, "sha512": hashes.SHA512,
        "sha3_224": hashes.SHA3_224, "sha3_256": hashes.SHA3_256,
        "sha3_384": hashes.SHA3_384, "sha3_512": hashes.SHA3_512,
    }
    if name not in hashes_by_name:
        raise ValueError(f"unsupported hash {name}")
    return hashes_by_name[name]()


def load_cert(data):
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def report(ac, parsed_extensions, attributes, aa_cert):
    info = ac["ac_info"]
    holder = info["holder"]
    bcid = optional(holder["base_certificate_id"])
    odi = optional(holder["object_digest_info"])
    issuer = info["issuer"]
    issuer_names = issuer.chosen["issuer_name"] if issuer.name == "v2_form" else issuer.chosen
    validity = info["att_cert_validity_period"]

    extensions = [{
        "oid": ext["extn_id"].dotted,
        "name": EXTENSION_NAMES.get(ext["extn_id"].dotted, ext["extn_id"].native),
        "critical": ext["critical"].native,
        "value": value,
    } for ext, value in parsed_extensions]
    by_oid = {e["oid"]: e for e in extensions}
    targets = by_oid.get(OID_TARGET_INFORMATION)
    aki = by_oid.get(OID_AUTHORITY_KEY_IDENTIFIER)
    try:
        aa_ski = aa_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except x509.ExtensionNotFound:
        aa_ski = None

    valid, error = verify(ac, aa_cert)
    out = {
        "version": int(info["version"]),
        "version_name": info["version"].native,
        "serial": int_hex(info["serial_number"].native),
        "holder": {
            "base_certificate_id": None if bcid is None else {
                "issuer": general_names(bcid["issuer"]),
                "serial": int_hex(bcid["serial"].native),
            },
            "entity_name": general_names(optional(holder["entity_name"])),
            "object_digest_info": None if odi is None else jsonable(odi.native),
        },
        "issuer": {
            "form": issuer.name,
            "names": general_names(optional(issuer_names)),
        },
        "signature_algorithm": algorithm(ac["signature_algorithm"]),
        "acinfo_signature_algorithm": algorithm(info["signature"]),
        "signature_algorithms_match": ac["signature_algorithm"].dump() == info["signature"].dump(),
        "not_before": epoch(validity["not_before_time"]),
        "not_after": epoch(validity["not_after_time"]),
        "not_before_text": generalized_time_text(validity["not_before_time"]),
        "not_after_text": generalized_time_text(validity["not_after_time"]),
        "attributes": attributes,
        "roles": [v["role_name"] for a in attributes if a["oid"] == OID_ROLE for v in a["values"]],
        "groups": [x for a in attributes if a["oid"] == OID_GROUP for v in a["values"]
                   for x in v["values"]],
        "extensions": extensions,
        "targets": [] if targets is None else
        [t["value"] for t in targets["value"] if t["type"] != "target_cert"],
        "target_info_critical": bool(targets and targets["critical"]),
        "no_rev_avail": OID_NO_REV_AVAIL in by_oid,
        "crl_urls": by_oid.get(OID_CRL_DISTRIBUTION_POINTS, {"value": []})["value"],
        "authority_key_identifier": None if aki is None else aki["value"]["key_identifier"],
        "aa_subject_key_identifier": aa_ski,
        "critical_extensions": sorted(e["oid"] for e in extensions if e["critical"]),
        "signature_valid": valid,
    }
    if not valid:
        out["signature_error"] = error
    return out


def main(argv):
    if len(argv) != 3:
        print("usage: ac_check.py AC.der AA.pem", file=sys.stderr)
        return 64
    with open(argv[1], "rb") as f:
        ac_data = f.read()
    with open(argv[2], "rb") as f:
        aa_cert = load_cert(f.read())
    try:
        ac, parsed_extensions, attributes = load_ac(ac_data)
    except ParseError as e:
        print(f"ac_check.py: {argv[1]}: asn1crypto cannot parse the attribute certificate: {e}",
              file=sys.stderr)
        return 2
    print(json.dumps(report(ac, parsed_extensions, attributes, aa_cert), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
