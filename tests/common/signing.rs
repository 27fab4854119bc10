//! Signed documents made by tools Vouch did not write, for the verification API's tests: CMS
//! SignedData from the `openssl cms` CLI, RFC 3161 timestamp tokens from a local `openssl ts`
//! TSA, put into a SignerInfo's unsigned attributes by `tests/verify/add_timestamp.py`
//! (asn1crypto, in the venv made by scripts/test.sh), and signer certificates from CAs of their
//! own, not issued by Vouch. Also OpenSSL's verdict on such documents (and on receipts).
//!
//! Every function runs child processes in a temporary directory and blocks until they end (tens
//! of milliseconds each; an RSA key a little more): from an async test whose runtime must keep
//! serving meanwhile, call them inside `tokio::task::spawn_blocking`. A failing tool fails the
//! test with its output; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use tempfile::TempDir;

/// The OID of id-aa-signatureTimeStampToken, the unsigned attribute holding a timestamp token.
pub const TIMESTAMP_ATTR: &str = "1.2.840.113549.1.9.16.2.14";

/// The policy of every timestamp of a [`Tsa`].
pub const TSA_POLICY: &str = "1.2.3.4.1";

/// A signing certificate and its private key, both PEM (the key PKCS#8).
#[derive(Clone, Debug)]
pub struct Signer {
    pub cert_pem: String,
    pub key_pem: String,
}

/// How `openssl cms -sign` makes the SignedData ([`cms_sign`]).
#[derive(Clone, Copy, Debug)]
pub struct SignOptions {
    /// No eContent: the content travels apart (`openssl cms -sign`'s own default; off here, so
    /// that the content is encapsulated with `-nodetach`).
    pub detached: bool,
    /// `-keyid`: each signer identified by its subjectKeyIdentifier (SignerIdentifier `[0]`,
    /// SignerInfo version 3) rather than by issuer and serial number.
    pub keyid: bool,
    /// `-noattr`: no signed attributes; the signature is over the content itself.
    pub noattr: bool,
    /// `-md`: the digest, e.g. "sha256", "sha384"; `None` leaves OpenSSL's default.
    pub md: Option<&'static str>,
    /// Include the signer certificates in `certificates` (false: `-nocerts`).
    pub certs: bool,
}

impl Default for SignOptions {
    /// Attached, issuer and serial number, signed attributes, SHA-256, certificates included.
    fn default() -> Self {
        SignOptions {
            detached: false,
            keyid: false,
            noattr: false,
            md: Some("sha256"),
            certs: true,
        }
    }
}

/// A CMS SignedData over `content`, DER, by `openssl cms -sign -binary` (no canonicalisation:
/// the bytes are signed as given), one SignerInfo per signer. OpenSSL writes the SignerInfos in
/// DER order (the SET OF sorted by their encodings), not in the order of `signers`: find one
/// with [`signer_index`].
#[track_caller]
pub fn cms_sign(content: &[u8], signers: &[&Signer], opts: &SignOptions) -> Vec<u8> {
    assert!(!signers.is_empty(), "cms_sign needs a signer");
    let dir = tempdir();
    write(dir.path(), "content.bin", content);
    let mut cmd = openssl();
    cmd.current_dir(dir.path()).args([
        "cms",
        "-sign",
        "-binary",
        "-in",
        "content.bin",
        "-outform",
        "DER",
        "-out",
        "signed.der",
    ]);
    if !opts.detached {
        cmd.arg("-nodetach");
    }
    if opts.keyid {
        cmd.arg("-keyid");
    }
    if opts.noattr {
        cmd.arg("-noattr");
    }
    if let Some(md) = opts.md {
        cmd.args(["-md", md]);
    }
    if !opts.certs {
        cmd.arg("-nocerts");
    }
    for (i, signer) in signers.iter().enumerate() {
        let cert = format!("signer{i}.pem");
        let key = format!("signer{i}.key");
        write(dir.path(), &cert, signer.cert_pem.as_bytes());
        write(dir.path(), &key, signer.key_pem.as_bytes());
        cmd.args(["-signer", &cert, "-inkey", &key]);
    }
    run_ok(&mut cmd);
    read(dir.path(), "signed.der")
}

/// `openssl cms -verify -binary -purpose any` of a DER SignedData under the trust anchors
/// `ca_pem` (one or more PEM certificates), with `content` for a detached signature: true if
/// every SignerInfo verifies and each signer certificate chains to `ca_pem`.
pub fn cms_verify_with_openssl(cms_der: &[u8], content: Option<&[u8]>, ca_pem: &str) -> bool {
    cms_verify_content_with_openssl(cms_der, content, ca_pem, &[]).is_ok()
}

/// [`cms_verify_with_openssl`] returning what `openssl cms -verify` wrote: `Ok` with the signed
/// content (the eContent, or `content` when detached), `Err` with OpenSSL's messages.
/// `extra_certs` (PEM) are offered as `-certfile`: the signer certificates of a document made
/// without them (`SignOptions { certs: false, .. }`), or intermediates.
pub fn cms_verify_content_with_openssl(
    cms_der: &[u8],
    content: Option<&[u8]>,
    ca_pem: &str,
    extra_certs: &[&str],
) -> Result<Vec<u8>, String> {
    let dir = tempdir();
    write(dir.path(), "signed.der", cms_der);
    write(dir.path(), "ca.pem", ca_pem.as_bytes());
    let mut cmd = openssl();
    cmd.current_dir(dir.path()).args([
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        "signed.der",
        "-CAfile",
        "ca.pem",
        "-binary",
        "-purpose",
        "any",
        "-out",
        "content.out",
    ]);
    if let Some(content) = content {
        write(dir.path(), "content.bin", content);
        cmd.args(["-content", "content.bin"]);
    }
    if !extra_certs.is_empty() {
        write(dir.path(), "extra.pem", extra_certs.concat().as_bytes());
        cmd.args(["-certfile", "extra.pem"]);
    }
    let out = run(&mut cmd);
    if out.ok {
        Ok(read(dir.path(), "content.out"))
    } else {
        Err(out.all)
    }
}

/// `openssl cms -cmsout -print -inform DER`: OpenSSL's dump of the whole structure.
#[track_caller]
pub fn cms_print(cms_der: &[u8]) -> String {
    let dir = tempdir();
    write(dir.path(), "signed.der", cms_der);
    run_ok(openssl().current_dir(dir.path()).args([
        "cms",
        "-cmsout",
        "-print",
        "-inform",
        "DER",
        "-in",
        "signed.der",
    ]))
}

/// A timestamp authority on the `openssl ts -reply` CLI: a self-signed root ("`name` Root",
/// P-256) and a TSA certificate under it ("`name`", P-256, extendedKeyUsage timeStamping
/// critical, as `openssl ts` demands), in a temporary directory with the serial file and the
/// configuration. Tokens: policy [`TSA_POLICY`], signed with SHA-256, the ESS
/// signingCertificateV2 (SHA-256) of the TSA certificate, accuracy 1.5001 s, ordering true, the
/// TSA's name, no nonce; the token's certificates hold the TSA certificate and the root. genTime
/// is the system clock's now (`openssl ts` has no way to choose it).
pub struct Tsa {
    pub dir: TempDir,
    pub cert_pem: String,
    pub key_pem: String,
    root_pem: String,
    config: PathBuf,
    /// `openssl ts -reply` reads and rewrites the serial file.
    lock: Mutex<()>,
}

impl Tsa {
    /// A TSA whose genTime has whole seconds.
    #[track_caller]
    pub fn new(name: &str) -> Tsa {
        Tsa::with_clock_precision(name, 0)
    }

    /// A TSA whose genTime has `digits` (0 to 6) decimal places of a second, e.g.
    /// `20261129073124.123Z` for 3.
    #[track_caller]
    pub fn with_clock_precision(name: &str, digits: u8) -> Tsa {
        assert!(digits <= 6, "openssl ts allows 0 to 6 digits");
        let dir = tempdir();
        let root = self_signed_root(dir.path(), &format!("{name} Root"));
        let key_pem = p256_key_pem();
        write(dir.path(), "tsa.key", key_pem.as_bytes());
        write(dir.path(), "tsa.csr", csr_pem(&key_pem, name).as_bytes());
        write(
            dir.path(),
            "tsa.ext",
            b"basicConstraints=critical,CA:FALSE\n\
              keyUsage=critical,digitalSignature\n\
              extendedKeyUsage=critical,timeStamping\n\
              subjectKeyIdentifier=hash\n\
              authorityKeyIdentifier=keyid\n",
        );
        run_ok(openssl().current_dir(dir.path()).args([
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            &random_serial(),
            "-days",
            "3650",
            "-sha256",
            "-extfile",
            "tsa.ext",
            "-out",
            "tsa.pem",
        ]));
        write(dir.path(), "serial", b"01\n");
        let d = dir.path().display();
        let config = format!(
            "[ tsa ]\n\
             default_tsa = tsa_config\n\
             \n\
             [ tsa_config ]\n\
             serial = {d}/serial\n\
             crypto_device = builtin\n\
             signer_cert = {d}/tsa.pem\n\
             certs = {d}/root.pem\n\
             signer_key = {d}/tsa.key\n\
             signer_digest = sha256\n\
             default_policy = {TSA_POLICY}\n\
             digests = sha256, sha384, sha512\n\
             accuracy = secs:1, millisecs:500, microsecs:100\n\
             clock_precision_digits = {digits}\n\
             ordering = yes\n\
             tsa_name = yes\n\
             ess_cert_id_chain = no\n\
             ess_cert_id_alg = sha256\n"
        );
        write(dir.path(), "tsa.cnf", config.as_bytes());
        Tsa {
            cert_pem: read_string(dir.path(), "tsa.pem"),
            key_pem,
            root_pem: root,
            config: dir.path().join("tsa.cnf"),
            lock: Mutex::new(()),
            dir,
        }
    }

    /// The TSA's self-signed root certificate, PEM: the trust anchor for its tokens.
    pub fn root_pem(&self) -> String {
        self.root_pem.clone()
    }

    /// A TimeStampToken (the ContentInfo, DER) over the SHA-256 digest `sha256`:
    /// `openssl ts -query -digest HEX -sha256 -cert -no_nonce`, then
    /// `openssl ts -reply -queryfile -config -token_out`.
    #[track_caller]
    pub fn timestamp(&self, sha256: &[u8]) -> Vec<u8> {
        assert_eq!(sha256.len(), 32, "a SHA-256 digest has 32 bytes");
        let dir = tempdir();
        run_ok(openssl().current_dir(dir.path()).args([
            "ts",
            "-query",
            "-digest",
            &hex::encode(sha256),
            "-sha256",
            "-cert",
            "-no_nonce",
            "-out",
            "query.tsq",
        ]));
        let _serial = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        run_ok(
            openssl()
                .current_dir(dir.path())
                .args(["ts", "-reply", "-queryfile", "query.tsq", "-config"])
                .arg(&self.config)
                .args(["-token_out", "-out", "token.der"]),
        );
        read(dir.path(), "token.der")
    }
}

/// The CMS `cms_der` with an RFC 3161 timestamp over the signature of SignerInfo
/// `signer_index` (0-based, in encoded order) from `tsa`, as the unsigned attribute
/// id-aa-signatureTimeStampToken ([`TIMESTAMP_ATTR`]), besides any unsigned attributes the
/// SignerInfo already has. The messageImprint is SHA-256 of the value of the SignerInfo's
/// `signature` OCTET STRING; everything signed keeps its bytes. The output is DER: the SET OFs
/// holding the change are sorted again, so the SignerInfo, having grown, may now sit at another
/// index (find it again with [`signer_index`]), and the new attribute need not come last.
#[track_caller]
pub fn add_timestamp(cms_der: &[u8], tsa: &Tsa, signer_index: usize) -> Vec<u8> {
    let token = tsa.timestamp(&signature_sha256(cms_der, signer_index));
    insert_timestamp_token(cms_der, &token, signer_index)
}

/// The CMS `cms_der` with `token_der` (any TimeStampToken, DER) added to SignerInfo
/// `signer_index`'s unsigned attributes as id-aa-signatureTimeStampToken, whatever it covers:
/// for documents whose timestamp does not match their signature.
#[track_caller]
pub fn insert_timestamp_token(cms_der: &[u8], token_der: &[u8], signer_index: usize) -> Vec<u8> {
    let dir = tempdir();
    write(dir.path(), "signed.der", cms_der);
    write(dir.path(), "token.der", token_der);
    let mut cmd = python();
    cmd.current_dir(dir.path())
        .arg(script())
        .args(["insert", "signed.der"])
        .arg(signer_index.to_string())
        .args(["token.der", "stamped.der"]);
    run_ok(&mut cmd);
    read(dir.path(), "stamped.der")
}

/// SHA-256 of the value of SignerInfo `signer_index`'s `signature` OCTET STRING (asn1crypto):
/// the messageImprint of a signature timestamp.
#[track_caller]
pub fn signature_sha256(cms_der: &[u8], signer_index: usize) -> Vec<u8> {
    let dir = tempdir();
    write(dir.path(), "signed.der", cms_der);
    let out = run_ok(
        python()
            .current_dir(dir.path())
            .arg(script())
            .args(["signature", "signed.der"])
            .arg(signer_index.to_string()),
    );
    let json: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("add_timestamp.py signature printed no JSON ({e}):\n{out}"));
    hex::decode(json["sha256"].as_str().expect("sha256")).expect("hex")
}

/// asn1crypto's view of every SignerInfo, in encoded order (`add_timestamp.py show`; its header
/// documents the fields): `{"signers": [{"sid", "digest_algorithm", "signature_algorithm",
/// "signed_attrs", "signature_sha256", "unsigned_attrs": [{"oid", "name", "values": [hex of the
/// bytes as encoded]}] | null, "timestamps": [{"hash_algorithm", "message_imprint", "gen_time",
/// "serial", "policy"}]}]}`.
#[track_caller]
pub fn cms_show(cms_der: &[u8]) -> serde_json::Value {
    let dir = tempdir();
    write(dir.path(), "signed.der", cms_der);
    let out = run_ok(
        python()
            .current_dir(dir.path())
            .arg(script())
            .args(["show", "signed.der"]),
    );
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("add_timestamp.py show printed no JSON ({e}):\n{out}"))
}

/// The index of the SignerInfo naming the certificate `cert_pem` in its sid (issuer and serial
/// number, or subjectKeyIdentifier), in encoded order; `None` if none does.
#[track_caller]
pub fn signer_index(cms_der: &[u8], cert_pem: &str) -> Option<usize> {
    let cert = openssl::x509::X509::from_pem(cert_pem.as_bytes()).expect("certificate PEM");
    let issuer = hex::encode(cert.issuer_name().to_der().expect("issuer DER"));
    let serial = cert
        .serial_number()
        .to_bn()
        .expect("serial")
        .to_hex_str()
        .expect("hex")
        .to_lowercase();
    let ski = cert.subject_key_id().map(|k| hex::encode(k.as_slice()));
    let show = cms_show(cms_der);
    show["signers"]
        .as_array()
        .expect("signers")
        .iter()
        .position(|s| {
            let sid = &s["sid"];
            match sid["type"].as_str() {
                Some("issuer_and_serial_number") => {
                    sid["issuer_der"] == issuer.as_str()
                        && sid["serial"].as_str().map(|s| s.trim_start_matches('0'))
                            == Some(serial.trim_start_matches('0'))
                }
                _ => ski.is_some() && sid["key_id"].as_str() == ski.as_deref(),
            }
        })
}

/// The timestamp tokens (DER) in SignerInfo `signer_index`'s id-aa-signatureTimeStampToken
/// attributes, as asn1crypto finds them.
#[track_caller]
pub fn timestamp_tokens(cms_der: &[u8], signer_index: usize) -> Vec<Vec<u8>> {
    let show = cms_show(cms_der);
    let signer = &show["signers"][signer_index];
    assert!(
        signer.is_object(),
        "no SignerInfo {signer_index}:\n{show:#}"
    );
    signer["unsigned_attrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["oid"] == TIMESTAMP_ATTR)
        .flat_map(|a| a["values"].as_array().expect("values").clone())
        .map(|v| hex::decode(v.as_str().expect("hex")).expect("hex"))
        .collect()
}

/// What `openssl ts -reply -in TOKEN -token_in -text` prints of a timestamp token, and the
/// fields the tests look at.
#[derive(Clone, Debug)]
pub struct TsTokenText {
    /// The whole text.
    pub text: String,
    /// "Hash Algorithm:", e.g. "sha256".
    pub hash_algorithm: String,
    /// "Message data:", the hashed message of messageImprint.
    pub message_imprint: Vec<u8>,
    /// "Policy OID:", OpenSSL's name for it where it has one (1.2.3.4.1 is "tsa_policy1" in the
    /// default openssl.cnf).
    pub policy: String,
    /// "Serial number:", e.g. "0x02".
    pub serial: String,
    /// "Time stamp:", e.g. "Nov 29 07:31:24 2026 GMT".
    pub time: String,
}

/// `openssl ts -reply -in TOKEN -token_in -text`: OpenSSL parses the token (a ContentInfo,
/// DER) and prints its TSTInfo. Panics if it cannot.
#[track_caller]
pub fn ts_token_text(token_der: &[u8]) -> TsTokenText {
    let dir = tempdir();
    write(dir.path(), "token.der", token_der);
    let text = run_ok(openssl().current_dir(dir.path()).args([
        "ts",
        "-reply",
        "-in",
        "token.der",
        "-token_in",
        "-text",
    ]));
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name:?} in:\n{text}"))
    };
    // "Message data:" is followed by hex dump lines: "    0000 - 43 75 53 9f ...-c6 8e   CuS.".
    let mut message_imprint = Vec::new();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("Message data:"));
    lines.next();
    for line in lines {
        let Some((_, dump)) = line.split_once(" - ") else {
            break;
        };
        let hex_part = dump.split("   ").next().unwrap_or("").replace('-', " ");
        for byte in hex_part.split_whitespace() {
            message_imprint.push(u8::from_str_radix(byte, 16).expect("hex dump"));
        }
    }
    TsTokenText {
        hash_algorithm: field("Hash Algorithm:"),
        policy: field("Policy OID:"),
        serial: field("Serial number:"),
        time: field("Time stamp:"),
        message_imprint,
        text,
    }
}

/// `openssl ts -verify -token_in -digest HEX -CAfile`: true if the token (DER) is a valid
/// timestamp over `data_digest` by a TSA certificate chaining to `tsa_root_pem`.
pub fn ts_verify_with_openssl(token_der: &[u8], data_digest: &[u8], tsa_root_pem: &str) -> bool {
    let dir = tempdir();
    write(dir.path(), "token.der", token_der);
    write(dir.path(), "root.pem", tsa_root_pem.as_bytes());
    run(openssl().current_dir(dir.path()).args([
        "ts",
        "-verify",
        "-in",
        "token.der",
        "-token_in",
        "-digest",
        &hex::encode(data_digest),
        "-CAfile",
        "root.pem",
    ]))
    .ok
}

/// A CA of its own, not Vouch's: a self-signed P-256 root that issues signing certificates.
pub struct ForeignCa {
    pub root_pem: String,
    dir: TempDir,
}

/// The extensions of a [`ForeignCa`] signing certificate.
pub const SIGNER_EXTENSIONS: &str = "basicConstraints=critical,CA:FALSE\n\
     keyUsage=critical,digitalSignature,nonRepudiation\n\
     subjectKeyIdentifier=hash\n\
     authorityKeyIdentifier=keyid\n";

impl ForeignCa {
    /// A root "CN=`name`" (basicConstraints CA critical, keyCertSign and cRLSign), ten years.
    #[track_caller]
    pub fn new(name: &str) -> ForeignCa {
        let dir = tempdir();
        let root_pem = self_signed_root(dir.path(), name);
        ForeignCa { root_pem, dir }
    }

    /// A certificate "CN=`cn`" for `key_pem` (PEM private key: its public half is certified),
    /// with [`SIGNER_EXTENSIONS`], valid for a year from now, random serial, signed with
    /// ECDSA-SHA256.
    #[track_caller]
    pub fn issue(&self, cn: &str, key_pem: &str) -> Signer {
        self.issue_with(cn, key_pem, SIGNER_EXTENSIONS)
    }

    /// Where its files are: `root.pem`, `root.key`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// [`ForeignCa::issue`] with other extensions: `extensions` is an `openssl x509 -extfile`
    /// (one `name=value` a line, as in [`SIGNER_EXTENSIONS`]).
    #[track_caller]
    pub fn issue_with(&self, cn: &str, key_pem: &str, extensions: &str) -> Signer {
        let dir = tempdir();
        write(dir.path(), "req.csr", csr_pem(key_pem, cn).as_bytes());
        write(dir.path(), "ee.ext", extensions.as_bytes());
        run_ok(
            openssl()
                .current_dir(dir.path())
                .args(["x509", "-req", "-in", "req.csr", "-CA"])
                .arg(self.dir.path().join("root.pem"))
                .arg("-CAkey")
                .arg(self.dir.path().join("root.key"))
                .args(["-set_serial", &random_serial(), "-days", "365", "-sha256"])
                .args(["-extfile", "ee.ext", "-out", "ee.pem"]),
        );
        Signer {
            cert_pem: read_string(dir.path(), "ee.pem"),
            key_pem: key_pem.to_string(),
        }
    }
}

/// A signer "CN=`cn`" (P-256) under a root of its own ([`ForeignCa`]): (signer, root PEM).
#[track_caller]
pub fn foreign_signer(cn: &str) -> (Signer, String) {
    foreign_signer_with_key(cn, &p256_key_pem())
}

/// [`foreign_signer`] for the key `key_pem`, e.g. [`rsa_key_pem`].
#[track_caller]
pub fn foreign_signer_with_key(cn: &str, key_pem: &str) -> (Signer, String) {
    let ca = ForeignCa::new(&format!("Foreign Root for {cn}"));
    (ca.issue(cn, key_pem), ca.root_pem)
}

/// A fresh P-256 private key, PKCS#8 PEM (`openssl genpkey`).
#[track_caller]
pub fn p256_key_pem() -> String {
    genpkey(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
}

/// A fresh RSA private key of `bits` bits, PKCS#8 PEM (`openssl genpkey`).
#[track_caller]
pub fn rsa_key_pem(bits: u32) -> String {
    genpkey(&[
        "-algorithm",
        "RSA",
        "-pkeyopt",
        &format!("rsa_keygen_bits:{bits}"),
    ])
}

/// A PKCS#10 request "CN=`cn`" signed with `key_pem`, PEM (`openssl req -new`; the default
/// digest, SHA-256).
#[track_caller]
pub fn csr_pem(key_pem: &str, cn: &str) -> String {
    let dir = tempdir();
    write(dir.path(), "key.pem", key_pem.as_bytes());
    let cn: String = cn
        .chars()
        .flat_map(|c| match c {
            '\\' | '/' | '+' | '=' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    run_ok(openssl().current_dir(dir.path()).args([
        "req",
        "-new",
        "-key",
        "key.pem",
        "-subj",
        &format!("/CN={cn}"),
        "-out",
        "req.csr",
    ]));
    read_string(dir.path(), "req.csr")
}

#[track_caller]
fn genpkey(args: &[&str]) -> String {
    let dir = tempdir();
    run_ok(
        openssl()
            .current_dir(dir.path())
            .arg("genpkey")
            .args(args)
            .args(["-out", "key.pem"]),
    );
    read_string(dir.path(), "key.pem")
}

/// A self-signed P-256 root "CN=`cn`" in `dir` (root.key, root.pem); its PEM.
#[track_caller]
fn self_signed_root(dir: &Path, cn: &str) -> String {
    write(dir, "root.key", p256_key_pem().as_bytes());
    write(
        dir,
        "root.ext",
        b"basicConstraints=critical,CA:TRUE\n\
          keyUsage=critical,keyCertSign,cRLSign\n\
          subjectKeyIdentifier=hash\n",
    );
    write(
        dir,
        "root.csr",
        csr_pem(&read_string(dir, "root.key"), cn).as_bytes(),
    );
    run_ok(openssl().current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "root.csr",
        "-key",
        "root.key",
        "-set_serial",
        &random_serial(),
        "-days",
        "3650",
        "-sha256",
        "-extfile",
        "root.ext",
        "-out",
        "root.pem",
    ]));
    read_string(dir, "root.pem")
}

/// A positive 127-bit serial, for `-set_serial`.
fn random_serial() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x40;
    format!("0x{}", hex::encode(bytes))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify/add_timestamp.py")
}

fn python() -> Command {
    Command::new(super::venv_bin("python"))
}

fn openssl() -> Command {
    Command::new("openssl")
}

#[track_caller]
fn tempdir() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[track_caller]
fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

#[track_caller]
fn read(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[track_caller]
fn read_string(dir: &Path, name: &str) -> String {
    String::from_utf8(read(dir, name)).expect("UTF-8")
}

/// A finished command: whether it succeeded, its stdout, and stdout then stderr.
struct Output {
    ok: bool,
    stdout: String,
    all: String,
}

/// Run a command; one that cannot start fails the test.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} ({e}): install openssl, and make the venv with scripts/test.sh",
            cmd.get_program()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    Output {
        ok: out.status.success(),
        stdout,
        all,
    }
}

/// Run a command that must succeed; its stdout.
#[track_caller]
fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.ok, "{cmd:?} failed:\n{}", out.all);
    out.stdout
}
