// RFC 5755 attribute certificates as Bouncy Castle reads and writes them, for the integration tests
// (tests/common/ac_tools.rs). Java 17, single file; classpath: bcprov, bcpkix and bcutil from
// Debian's libbcprov-java, libbcpkix-java and libbcutil-java (/usr/share/java).
//
//   check AC.der AA.pem HOLDER.pem EPOCH_SECONDS
//       Reads the AC (DER, or PEM "ATTRIBUTE CERTIFICATE") with X509AttributeCertificateHolder and
//       prints one key=value line each, keys in a fixed order (list values comma-separated):
//         version              getVersion(): Bouncy Castle adds 1 to the DER INTEGER, so a v2 AC
//                              (INTEGER 1) prints 2
//         serial               lowercase hex, no leading zeros ("0" for zero)
//         signature_algorithm  the outer signatureAlgorithm OID
//         signature            valid | invalid, isSignatureValid() under the AA certificate's key
//         signature_error      only when isSignatureValid threw (then signature=invalid)
//         holder_match         true | false, getHolder().match(holder certificate)
//         holder_issuer        the holder's baseCertificateID issuer names (X500Name.toString)
//         holder_serial        the holder's baseCertificateID serial, hex (empty if none)
//         valid_at             true | false, isValidOn(EPOCH_SECONDS)
//         not_before           epoch seconds
//         not_after            epoch seconds
//         issuer               the v2Form issuerName, X500Name.toString() (Bouncy Castle's
//                              style: RDNs in encoded order, e.g. C=..,O=..,CN=..)
//         issuer_rfc4514       the same names in RFC 4514 order (last RDN first, e.g.
//                              CN=..,O=..,C=..); several names are joined with ';' in both
//         roles                roleName of each RoleSyntax value of attribute 2.5.4.72
//         groups               values of each IetfAttrSyntax of attribute 1.3.6.1.5.5.7.10.4
//                              (strings as is, OIDs dotted, octets hex)
//         targets              targetName and targetGroup names of targetInformation (2.5.29.55),
//                              a URI as is, any other name as GeneralName.toString()
//         target_info_critical true | false (false when absent)
//         no_rev_avail         true | false: extension 2.5.29.56 present
//         crl_urls             URIs in the fullNames of cRLDistributionPoints (2.5.29.31)
//         aki                  keyIdentifier of authorityKeyIdentifier (2.5.29.35), hex
//         extensions           every extension OID, in encoded order
//         critical_extensions  the critical extension OIDs, sorted
//       Exit 0 whenever the AC and the extensions and attributes above could be parsed (whatever
//       the verdicts); exit 2 with a message on stderr otherwise.
//
//   make AA.key AA.pem HOLDER.pem OUT.der ROLE_URI TARGET_URI NOT_BEFORE NOT_AFTER SERIAL_HEX
//       Builds a v2 AC with X509v2AttributeCertificateBuilder: holder baseCertificateID of the
//       holder certificate, issuer v2Form with the AA certificate's subject, one role attribute
//       (RoleSyntax with roleName URI ROLE_URI), a critical targetInformation with one targetName
//       URI TARGET_URI, a non-critical noRevAvail (NULL) and an authorityKeyIdentifier (the AA
//       certificate's subjectKeyIdentifier, or the SHA-1 of its key when it has none), signed with
//       the AA key (PEM PKCS#8 or SEC1): ECDSA with SHA-256/384/512 for P-256/384/521, SHA-256
//       with RSA, or Ed25519. NOT_BEFORE and NOT_AFTER are epoch seconds (GeneralizedTime, whole
//       seconds). Writes the DER to OUT.der.

import java.io.FileReader;
import java.io.IOException;
import java.io.Reader;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.Security;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.RSAPrivateKey;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.ASN1String;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.Attribute;
import org.bouncycastle.asn1.x509.AuthorityKeyIdentifier;
import org.bouncycastle.asn1.x509.CRLDistPoint;
import org.bouncycastle.asn1.x509.DistributionPoint;
import org.bouncycastle.asn1.x509.DistributionPointName;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.IetfAttrSyntax;
import org.bouncycastle.asn1.x509.RoleSyntax;
import org.bouncycastle.asn1.x509.SubjectKeyIdentifier;
import org.bouncycastle.asn1.x509.Target;
import org.bouncycastle.asn1.x509.TargetInformation;
import org.bouncycastle.asn1.x509.Targets;
import org.bouncycastle.cert.AttributeCertificateHolder;
import org.bouncycastle.cert.AttributeCertificateIssuer;
import org.bouncycastle.cert.X509AttributeCertificateHolder;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v2AttributeCertificateBuilder;
import org.bouncycastle.cert.bc.BcX509ExtensionUtils;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.util.encoders.Hex;

public final class AcTool {
    private static final ASN1ObjectIdentifier ROLE = new ASN1ObjectIdentifier("2.5.4.72");
    private static final ASN1ObjectIdentifier GROUP = new ASN1ObjectIdentifier("1.3.6.1.5.5.7.10.4");

    private AcTool() {}

    public static void main(String[] args) {
        Security.addProvider(new BouncyCastleProvider());
        try {
            if (args.length == 5 && args[0].equals("check")) {
                check(args);
            } else if (args.length == 10 && args[0].equals("make")) {
                make(args);
            } else {
                System.err.println("usage: AcTool check AC.der AA.pem HOLDER.pem EPOCH_SECONDS");
                System.err.println("       AcTool make AA.key AA.pem HOLDER.pem OUT.der ROLE_URI TARGET_URI"
                        + " NOT_BEFORE NOT_AFTER SERIAL_HEX");
                System.exit(64);
            }
        } catch (Exception e) {
            System.err.println("AcTool " + args[0] + ": " + e);
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                System.err.println("  caused by: " + c);
            }
            System.exit(2);
        }
    }

    private static void check(String[] args) throws Exception {
        X509AttributeCertificateHolder ac = readAc(Path.of(args[1]));
        X509CertificateHolder aa = readCert(args[2]);
        X509CertificateHolder holder = readCert(args[3]);
        long epoch = Long.parseLong(args[4]);

        List<String> out = new ArrayList<>();
        out.add("version=" + ac.getVersion());
        out.add("serial=" + ac.getSerialNumber().toString(16));
        out.add("signature_algorithm=" + ac.getSignatureAlgorithm().getAlgorithm().getId());
        String signature;
        String signatureError = null;
        try {
            signature = ac.isSignatureValid(new JcaContentVerifierProviderBuilder()
                    .setProvider("BC").build(aa)) ? "valid" : "invalid";
        } catch (Exception e) {
            signature = "invalid";
            signatureError = oneLine(e.toString());
        }
        out.add("signature=" + signature);
        if (signatureError != null) {
            out.add("signature_error=" + signatureError);
        }
        AttributeCertificateHolder acHolder = ac.getHolder();
        out.add("holder_match=" + acHolder.match(holder));
        out.add("holder_issuer=" + names(acHolder.getIssuer()));
        BigInteger holderSerial = acHolder.getSerialNumber();
        out.add("holder_serial=" + (holderSerial == null ? "" : holderSerial.toString(16)));
        out.add("valid_at=" + ac.isValidOn(new Date(epoch * 1000L)));
        out.add("not_before=" + ac.getNotBefore().getTime() / 1000L);
        out.add("not_after=" + ac.getNotAfter().getTime() / 1000L);
        X500Name[] issuer = ac.getIssuer().getNames();
        out.add("issuer=" + names(issuer));
        List<String> rfc4514 = new ArrayList<>();
        for (X500Name name : issuer) {
            RDN[] rdns = name.getRDNs();
            RDN[] reversed = new RDN[rdns.length];
            for (int i = 0; i < rdns.length; i++) {
                reversed[i] = rdns[rdns.length - 1 - i];
            }
            rfc4514.add(new X500Name(BCStyle.INSTANCE, reversed).toString());
        }
        out.add("issuer_rfc4514=" + String.join(";", rfc4514));

        List<String> roles = new ArrayList<>();
        for (Attribute attr : ac.getAttributes(ROLE)) {
            for (ASN1Encodable value : attr.getAttrValues()) {
                roles.add(RoleSyntax.getInstance(value).getRoleNameAsString());
            }
        }
        out.add("roles=" + String.join(",", roles));
        List<String> groups = new ArrayList<>();
        for (Attribute attr : ac.getAttributes(GROUP)) {
            for (ASN1Encodable value : attr.getAttrValues()) {
                for (Object v : IetfAttrSyntax.getInstance(value).getValues()) {
                    groups.add(ietfValue(v));
                }
            }
        }
        out.add("groups=" + String.join(",", groups));

        Extension targetExt = ac.getExtension(Extension.targetInformation);
        List<String> targets = new ArrayList<>();
        if (targetExt != null) {
            for (Targets ts : TargetInformation.getInstance(targetExt.getParsedValue()).getTargetsObjects()) {
                for (Target t : ts.getTargets()) {
                    GeneralName name = t.getTargetName() != null ? t.getTargetName() : t.getTargetGroup();
                    targets.add(generalName(name));
                }
            }
        }
        out.add("targets=" + String.join(",", targets));
        out.add("target_info_critical=" + (targetExt != null && targetExt.isCritical()));
        Extension noRevAvail = ac.getExtension(Extension.noRevAvail);
        if (noRevAvail != null) {
            DERNull.getInstance(noRevAvail.getParsedValue());
        }
        out.add("no_rev_avail=" + (noRevAvail != null));

        Extension cdpExt = ac.getExtension(Extension.cRLDistributionPoints);
        List<String> crlUrls = new ArrayList<>();
        if (cdpExt != null) {
            for (DistributionPoint dp : CRLDistPoint.getInstance(cdpExt.getParsedValue()).getDistributionPoints()) {
                DistributionPointName dpn = dp.getDistributionPoint();
                if (dpn != null && dpn.getType() == DistributionPointName.FULL_NAME) {
                    for (GeneralName name : GeneralNames.getInstance(dpn.getName()).getNames()) {
                        if (name.getTagNo() == GeneralName.uniformResourceIdentifier) {
                            crlUrls.add(generalName(name));
                        }
                    }
                }
            }
        }
        out.add("crl_urls=" + String.join(",", crlUrls));
        Extension akiExt = ac.getExtension(Extension.authorityKeyIdentifier);
        String aki = "";
        if (akiExt != null) {
            byte[] keyId = AuthorityKeyIdentifier.getInstance(akiExt.getParsedValue()).getKeyIdentifier();
            aki = keyId == null ? "" : Hex.toHexString(keyId);
        }
        out.add("aki=" + aki);

        List<String> extensions = new ArrayList<>();
        for (Object oid : ac.getExtensionOIDs()) {
            extensions.add(((ASN1ObjectIdentifier) oid).getId());
        }
        out.add("extensions=" + String.join(",", extensions));
        Set<String> critical = new TreeSet<>();
        for (Object oid : ac.getCriticalExtensionOIDs()) {
            critical.add(((ASN1ObjectIdentifier) oid).getId());
        }
        out.add("critical_extensions=" + String.join(",", critical));

        for (String line : out) {
            System.out.println(line);
        }
    }

    private static void make(String[] args) throws Exception {
        PrivateKey key = readKey(args[1]);
        X509CertificateHolder aa = readCert(args[2]);
        X509CertificateHolder holder = readCert(args[3]);
        Path outFile = Path.of(args[4]);
        String roleUri = args[5];
        String targetUri = args[6];
        Date notBefore = new Date(Long.parseLong(args[7]) * 1000L);
        Date notAfter = new Date(Long.parseLong(args[8]) * 1000L);
        BigInteger serial = new BigInteger(args[9], 16);

        X509v2AttributeCertificateBuilder builder = new X509v2AttributeCertificateBuilder(
                new AttributeCertificateHolder(holder),
                new AttributeCertificateIssuer(aa.getSubject()),
                serial, notBefore, notAfter);
        builder.addAttribute(ROLE,
                new RoleSyntax(new GeneralName(GeneralName.uniformResourceIdentifier, roleUri)));
        builder.addExtension(Extension.targetInformation, true, new TargetInformation(new Target[] {
                new Target(Target.targetName, new GeneralName(GeneralName.uniformResourceIdentifier, targetUri))
        }));
        builder.addExtension(Extension.noRevAvail, false, DERNull.INSTANCE);
        Extension ski = aa.getExtension(Extension.subjectKeyIdentifier);
        AuthorityKeyIdentifier aki = ski != null
                ? new AuthorityKeyIdentifier(SubjectKeyIdentifier.getInstance(ski.getParsedValue()).getKeyIdentifier())
                : new BcX509ExtensionUtils().createAuthorityKeyIdentifier(aa.getSubjectPublicKeyInfo());
        builder.addExtension(Extension.authorityKeyIdentifier, false, aki);

        ContentSigner signer = new JcaContentSignerBuilder(signatureAlgorithm(key)).setProvider("BC").build(key);
        Files.write(outFile, builder.build(signer).getEncoded());
    }

    private static String signatureAlgorithm(PrivateKey key) {
        if (key instanceof ECPrivateKey ec) {
            int bits = ec.getParams().getCurve().getField().getFieldSize();
            return bits > 384 ? "SHA512withECDSA" : bits > 256 ? "SHA384withECDSA" : "SHA256withECDSA";
        }
        if (key instanceof RSAPrivateKey) {
            return "SHA256withRSA";
        }
        if (key.getAlgorithm().equalsIgnoreCase("Ed25519") || key.getAlgorithm().equalsIgnoreCase("EdDSA")) {
            return "Ed25519";
        }
        throw new IllegalArgumentException("unsupported AA key algorithm " + key.getAlgorithm());
    }

    private static X509AttributeCertificateHolder readAc(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        String head = new String(bytes, 0, Math.min(bytes.length, 11), StandardCharsets.US_ASCII);
        if (head.equals("-----BEGIN ")) {
            try (PEMParser parser = new PEMParser(new FileReader(file.toFile(), StandardCharsets.US_ASCII))) {
                Object o = parser.readObject();
                if (o instanceof X509AttributeCertificateHolder ac) {
                    return ac;
                }
                throw new IOException(file + ": not a PEM ATTRIBUTE CERTIFICATE");
            }
        }
        return new X509AttributeCertificateHolder(bytes);
    }

    private static X509CertificateHolder readCert(String file) throws IOException {
        Object o = readPem(file);
        if (o instanceof X509CertificateHolder cert) {
            return cert;
        }
        throw new IOException(file + ": not a PEM CERTIFICATE");
    }

    private static PrivateKey readKey(String file) throws IOException {
        Object o = readPem(file);
        JcaPEMKeyConverter converter = new JcaPEMKeyConverter().setProvider("BC");
        if (o instanceof org.bouncycastle.asn1.pkcs.PrivateKeyInfo info) {
            return converter.getPrivateKey(info);
        }
        if (o instanceof PEMKeyPair pair) {
            return converter.getKeyPair(pair).getPrivate();
        }
        throw new IOException(file + ": not an unencrypted PEM private key");
    }

    private static Object readPem(String file) throws IOException {
        try (Reader r = new FileReader(file, StandardCharsets.US_ASCII); PEMParser parser = new PEMParser(r)) {
            Object o = parser.readObject();
            if (o == null) {
                throw new IOException(file + ": no PEM object");
            }
            return o;
        }
    }

    private static String names(X500Name[] names) {
        if (names == null) {
            return "";
        }
        List<String> s = new ArrayList<>();
        for (X500Name name : names) {
            s.add(name.toString());
        }
        return String.join(";", s);
    }

    private static String generalName(GeneralName name) {
        if (name.getTagNo() == GeneralName.uniformResourceIdentifier && name.getName() instanceof ASN1String s) {
            return s.getString();
        }
        return name.toString();
    }

    private static String ietfValue(Object v) {
        if (v instanceof ASN1String s) {
            return s.getString();
        }
        if (v instanceof ASN1ObjectIdentifier oid) {
            return oid.getId();
        }
        if (v instanceof ASN1OctetString octets) {
            return Hex.toHexString(octets.getOctets());
        }
        return String.valueOf(v);
    }

    private static String oneLine(String s) {
        return s.replace('\n', ' ').replace('\r', ' ');
    }
}
