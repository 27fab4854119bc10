// A CMP CA made of Bouncy Castle's CMP and CRMF classes (Debian's libbcpkix-java), for the CMP
// benchmark and the interoperability test: unlike `openssl cmp`'s mock, which answers every
// request with one fixed certificate, it signs what each request asks for.
//
//   java -cp <this>:<bcprov>:<bcpkix>:<bcutil> BcCmpCa PORT_FILE CA_CERT CA_KEY [LOG [PORT]]
//
// Listens on 127.0.0.1 (PORT, or a free port; written to PORT_FILE) at /pkix. With LOG, it appends a line
// to that file for each certificate issued (`issued SERIAL TRANSACTIONID`; the certificate itself
// goes to issued-SERIAL.pem beside LOG), each certConf
// (`confirmed TRANSACTIONID`) and each revocation granted
// (`revoked SERIAL REASON`), serials in lowercase hex, so that a test can count what the CA did. It accepts messages
// protected by a signature whose certificate the CA issued (the RA's), and answers, signed with
// the CA key and with the CA certificate in extraCerts:
//   ir, cr   an ip/cp with a certificate for the template's subject, public key, validity and
//            extensions (the RA vetted it: raVerified proof of possession accepted);
//   p10cr    a cp for the CSR's subject, key and requested extensions, valid for 30 days;
//   certConf a pkiConf;
//   rr       a rp granting the revocation;
//   genm     a genp with the CA certificate under id-it-caCerts.
// Anything else, or a protection that does not verify, gets an error message (badRequest or
// badMessageCheck). Serial numbers are 16 random octets.
//
// BCCMP_MODE (environment, comma-separated) makes it behave as some CAs do, for the failure tests:
//   remember       it keeps each ir/cr transaction (by transactionID): a request repeated in a
//                  transaction whose certificate is not confirmed yet, with the same
//                  CertReqMessages, is a retransmission and gets the same certificate again
//                  (logged `retransmitted SERIAL`, not issued anew); any other request in a
//                  transaction it holds gets transactionIdInUse;
//   no-retransmit  with remember: a repeated request gets transactionIdInUse too;
//   lose-first     the answer to the first ir/cr is lost: it issues, then drops the connection
//                  without answering;
//   wrong-subject  issued certificates name another subject (CN=Not Approved) than the template;
//   refuse-rr      every rr is refused (notAuthorized);
//   longer         issued certificates last a year longer than the template asks;
//   ca-flag        issued certificates say basicConstraints cA TRUE;
//   other-key      issued certificates are signed by a key that is not the CA's (same issuer name).

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.FileReader;
import java.io.InputStream;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Security;
import java.util.Arrays;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.DERSequence;
import org.bouncycastle.asn1.cmp.CMPCertificate;
import org.bouncycastle.asn1.cmp.CertConfirmContent;
import org.bouncycastle.asn1.cmp.CertOrEncCert;
import org.bouncycastle.asn1.cmp.CertRepMessage;
import org.bouncycastle.asn1.cmp.CertResponse;
import org.bouncycastle.asn1.cmp.CertifiedKeyPair;
import org.bouncycastle.asn1.cmp.ErrorMsgContent;
import org.bouncycastle.asn1.cmp.GenRepContent;
import org.bouncycastle.asn1.cmp.InfoTypeAndValue;
import org.bouncycastle.asn1.cmp.PKIBody;
import org.bouncycastle.asn1.cmp.PKIFailureInfo;
import org.bouncycastle.asn1.cmp.PKIFreeText;
import org.bouncycastle.asn1.cmp.PKIHeader;
import org.bouncycastle.asn1.cmp.PKIMessage;
import org.bouncycastle.asn1.cmp.PKIStatus;
import org.bouncycastle.asn1.cmp.PKIStatusInfo;
import org.bouncycastle.asn1.cmp.RevDetails;
import org.bouncycastle.asn1.cmp.RevRepContentBuilder;
import org.bouncycastle.asn1.cmp.RevReqContent;
import org.bouncycastle.asn1.crmf.CertReqMessages;
import org.bouncycastle.asn1.crmf.CertReqMsg;
import org.bouncycastle.asn1.crmf.CertTemplate;
import org.bouncycastle.asn1.crmf.OptionalValidity;
import org.bouncycastle.asn1.pkcs.Attribute;
import org.bouncycastle.asn1.pkcs.CertificationRequest;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.CRLReason;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.cmp.GeneralPKIMessage;
import org.bouncycastle.cert.cmp.ProtectedPKIMessage;
import org.bouncycastle.cert.cmp.ProtectedPKIMessageBuilder;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;

public class BcCmpCa {
    static final ASN1ObjectIdentifier CA_CERTS = new ASN1ObjectIdentifier("1.3.6.1.5.5.7.4.17");
    static final SecureRandom RANDOM = new SecureRandom();
    static X509CertificateHolder caCert;
    static PrivateKey caKey;
    static String sigAlg;
    static java.nio.file.Path log;
    static List<String> mode = Arrays.asList(System.getenv().getOrDefault("BCCMP_MODE", "").split(","));
    /** The ir/cr transactions (mode remember), by hex transactionID. */
    static final Map<String, Held> held = new HashMap<>();
    static boolean answerLost;

    static final class Held {
        final byte[] request;
        final X509CertificateHolder cert;
        boolean confirmed;

        Held(byte[] request, X509CertificateHolder cert) {
            this.request = request;
            this.cert = cert;
        }
    }

    /** Thrown to drop the connection without an answer (mode lose-first). */
    static final class Lost extends Exception {
        private static final long serialVersionUID = 1L;
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        caCert = (X509CertificateHolder) new PEMParser(new FileReader(args[1])).readObject();
        Object key = new PEMParser(new FileReader(args[2])).readObject();
        JcaPEMKeyConverter conv = new JcaPEMKeyConverter().setProvider("BC");
        caKey = key instanceof PEMKeyPair
            ? conv.getKeyPair((PEMKeyPair) key).getPrivate()
            : conv.getPrivateKey((org.bouncycastle.asn1.pkcs.PrivateKeyInfo) key);
        sigAlg = caKey.getAlgorithm().startsWith("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        log = args.length > 3 ? Paths.get(args[3]) : null;
        int port = args.length > 4 ? Integer.parseInt(args[4]) : 0;
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 256);
        server.setExecutor(Executors.newFixedThreadPool(16));
        server.createContext("/pkix", BcCmpCa::handle);
        server.start();
        Files.write(Paths.get(args[0] + ".tmp"),
            String.valueOf(server.getAddress().getPort()).getBytes(StandardCharsets.US_ASCII));
        Files.move(Paths.get(args[0] + ".tmp"), Paths.get(args[0]));
    }

    static void handle(HttpExchange ex) {
        try {
            byte[] body;
            try (InputStream in = ex.getRequestBody()) {
                body = in.readNBytes(1 << 20);
            }
            byte[] answer;
            try {
                answer = answer(PKIMessage.getInstance(body)).getEncoded();
            } catch (Lost lost) {
                // Closing the exchange before any header was sent drops the connection.
                return;
            }
            ex.getResponseHeaders().set("Content-Type", "application/pkixcmp");
            ex.sendResponseHeaders(200, answer.length);
            ex.getResponseBody().write(answer);
        } catch (Exception e) {
            e.printStackTrace();
            try {
                ex.sendResponseHeaders(400, -1);
            } catch (Exception ignored) {
                // the connection is gone
            }
        } finally {
            ex.close();
        }
    }

    static PKIMessage answer(PKIMessage msg) throws Exception {
        PKIHeader h = msg.getHeader();
        ProtectedPKIMessage pm = new ProtectedPKIMessage(new GeneralPKIMessage(msg));
        if (pm.hasPasswordBasedMacProtection() || pm.getCertificates().length == 0) {
            return error(h, PKIFailureInfo.badMessageCheck, "signature protection with the RA certificate required");
        }
        X509CertificateHolder ra = pm.getCertificates()[0];
        JcaContentVerifierProviderBuilder vb = new JcaContentVerifierProviderBuilder().setProvider("BC");
        if (!ra.isSignatureValid(vb.build(caCert)) || !pm.verify(vb.build(ra))) {
            return error(h, PKIFailureInfo.badMessageCheck, "protection does not verify");
        }
        PKIBody b = msg.getBody();
        switch (b.getType()) {
            case PKIBody.TYPE_INIT_REQ:
            case PKIBody.TYPE_CERT_REQ: {
                CertReqMessages reqs = CertReqMessages.getInstance(b.getContent());
                CertReqMsg m = reqs.toCertReqMsgArray()[0];
                String tid = h.getTransactionID() == null
                    ? "" : new BigInteger(1, h.getTransactionID().getOctets()).toString(16);
                byte[] request = reqs.getEncoded();
                X509CertificateHolder cert;
                synchronized (held) {
                    Held prior = mode.contains("remember") ? held.get(tid) : null;
                    if (prior != null && !prior.confirmed && Arrays.equals(prior.request, request)
                            && !mode.contains("no-retransmit")) {
                        cert = prior.cert;
                        note("retransmitted " + cert.getSerialNumber().toString(16));
                    } else if (prior != null) {
                        return error(h, PKIFailureInfo.transactionIdInUse,
                            "transaction " + tid + " is in use");
                    } else {
                        CertTemplate t = m.getCertReq().getCertTemplate();
                        OptionalValidity v = t.getValidity();
                        Date from = v != null && v.getNotBefore() != null ? v.getNotBefore().getDate() : new Date();
                        Date to = v != null && v.getNotAfter() != null
                            ? v.getNotAfter().getDate() : new Date(from.getTime() + 30L * 86400000L);
                        X500Name subject = mode.contains("wrong-subject")
                            ? new X500Name("CN=Not Approved") : t.getSubject();
                        cert = issue(subject, t.getPublicKey(), from, to, t.getExtensions(), tid);
                        if (mode.contains("remember")) {
                            held.put(tid, new Held(request, cert));
                        }
                    }
                    if (mode.contains("lose-first") && !answerLost) {
                        answerLost = true;
                        throw new Lost();
                    }
                }
                int type = b.getType() == PKIBody.TYPE_INIT_REQ ? PKIBody.TYPE_INIT_REP : PKIBody.TYPE_CERT_REP;
                return reply(h, new PKIBody(type, certRep(m.getCertReq().getCertReqId(), cert)));
            }
            case PKIBody.TYPE_P10_CERT_REQ: {
                PKCS10CertificationRequest p10 =
                    new PKCS10CertificationRequest(CertificationRequest.getInstance(b.getContent()));
                Extensions exts = null;
                for (Attribute a : p10.getAttributes(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest)) {
                    exts = Extensions.getInstance(a.getAttrValues().getObjectAt(0));
                }
                Date from = new Date();
                String tid = h.getTransactionID() == null
                    ? "" : new BigInteger(1, h.getTransactionID().getOctets()).toString(16);
                X509CertificateHolder cert = issue(p10.getSubject(), p10.getSubjectPublicKeyInfo(), from,
                    new Date(from.getTime() + 30L * 86400000L), exts, tid);
                return reply(h, new PKIBody(PKIBody.TYPE_CERT_REP, certRep(new ASN1Integer(-1), cert)));
            }
            case PKIBody.TYPE_CERT_CONFIRM:
                CertConfirmContent.getInstance(b.getContent());
                note("confirmed " + (h.getTransactionID() == null
                    ? "" : new BigInteger(1, h.getTransactionID().getOctets()).toString(16)));
                synchronized (held) {
                    Held prior = h.getTransactionID() == null ? null
                        : held.get(new BigInteger(1, h.getTransactionID().getOctets()).toString(16));
                    if (prior != null) {
                        prior.confirmed = true;
                    }
                }
                return reply(h, new PKIBody(PKIBody.TYPE_CONFIRM, DERNull.INSTANCE));
            case PKIBody.TYPE_REVOCATION_REQ: {
                if (mode.contains("refuse-rr")) {
                    return error(h, PKIFailureInfo.notAuthorized, "revocation is not allowed to this RA");
                }
                for (RevDetails d : RevReqContent.getInstance(b.getContent()).toRevDetailsArray()) {
                    Extensions e = d.getCrlEntryDetails();
                    Extension reason = e == null ? null : e.getExtension(Extension.reasonCode);
                    note("revoked " + d.getCertDetails().getSerialNumber().getValue().toString(16) + " "
                        + (reason == null ? "-" : CRLReason.getInstance(reason.getParsedValue()).getValue()));
                }
                RevRepContentBuilder rb = new RevRepContentBuilder();
                rb.add(new PKIStatusInfo(PKIStatus.granted));
                return reply(h, new PKIBody(PKIBody.TYPE_REVOCATION_REP, rb.build()));
            }
            case PKIBody.TYPE_GEN_MSG: {
                InfoTypeAndValue itav = new InfoTypeAndValue(CA_CERTS,
                    new DERSequence(new CMPCertificate(caCert.toASN1Structure())));
                return reply(h, new PKIBody(PKIBody.TYPE_GEN_REP, new GenRepContent(itav)));
            }
            default:
                return error(h, PKIFailureInfo.badRequest, "message type " + b.getType() + " not served");
        }
    }

    static X509CertificateHolder issue(X500Name subject, SubjectPublicKeyInfo key, Date from, Date to,
            Extensions exts, String tid) throws Exception {
        byte[] serial = new byte[16];
        RANDOM.nextBytes(serial);
        serial[0] &= 0x7f;
        serial[0] |= 0x40;
        if (mode.contains("longer")) {
            to = new Date(to.getTime() + 365L * 86400000L);
        }
        X509v3CertificateBuilder b = new X509v3CertificateBuilder(caCert.getSubject(),
            new BigInteger(serial), from, to, subject, key);
        JcaX509ExtensionUtils utils = new JcaX509ExtensionUtils();
        b.addExtension(Extension.subjectKeyIdentifier, false, utils.createSubjectKeyIdentifier(key));
        b.addExtension(Extension.authorityKeyIdentifier, false, utils.createAuthorityKeyIdentifier(caCert));
        if (exts != null) {
            for (ASN1ObjectIdentifier oid : exts.getExtensionOIDs()) {
                boolean replaced = mode.contains("ca-flag") && oid.equals(Extension.basicConstraints);
                if (!oid.equals(Extension.subjectKeyIdentifier) && !oid.equals(Extension.authorityKeyIdentifier)
                        && !replaced) {
                    b.addExtension(exts.getExtension(oid));
                }
            }
        }
        if (mode.contains("ca-flag")) {
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        }
        X509CertificateHolder cert = b.build(mode.contains("other-key") ? otherSigner() : signer());
        note("issued " + cert.getSerialNumber().toString(16) + " " + tid);
        if (log != null) {
            // The CA's own record of what it issued, as an operator would read it.
            String pem = "-----BEGIN CERTIFICATE-----\n"
                + java.util.Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(cert.getEncoded())
                + "\n-----END CERTIFICATE-----\n";
            Files.write(log.resolveSibling("issued-" + cert.getSerialNumber().toString(16) + ".pem"),
                pem.getBytes(StandardCharsets.US_ASCII));
        }
        return cert;
    }

    static synchronized void note(String line) throws java.io.IOException {
        if (log != null) {
            Files.write(log, (line + "\n").getBytes(StandardCharsets.US_ASCII),
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        }
    }

    static CertRepMessage certRep(ASN1Integer reqId, X509CertificateHolder cert) {
        CertifiedKeyPair pair = new CertifiedKeyPair(new CertOrEncCert(new CMPCertificate(cert.toASN1Structure())));
        CertResponse r = new CertResponse(reqId, new PKIStatusInfo(PKIStatus.granted), pair, null);
        return new CertRepMessage(null, new CertResponse[] {r});
    }

    static PKIMessage error(PKIHeader h, int failure, String text) throws Exception {
        PKIStatusInfo status = new PKIStatusInfo(PKIStatus.rejection, new PKIFreeText(text), new PKIFailureInfo(failure));
        return reply(h, new PKIBody(PKIBody.TYPE_ERROR, new ErrorMsgContent(status)));
    }

    static PKIMessage reply(PKIHeader h, PKIBody body) throws Exception {
        byte[] nonce = new byte[16];
        RANDOM.nextBytes(nonce);
        ProtectedPKIMessageBuilder b = new ProtectedPKIMessageBuilder(h.getPvno().intValueExact(),
                new GeneralName(caCert.getSubject()), h.getSender())
            .setMessageTime(new Date())
            .setSenderNonce(nonce)
            .setBody(body)
            .addCMPCertificate(caCert);
        if (h.getTransactionID() != null) {
            b.setTransactionID(h.getTransactionID().getOctets());
        }
        if (h.getSenderNonce() != null) {
            b.setRecipNonce(h.getSenderNonce().getOctets());
        }
        return b.build(signer()).toASN1Structure();
    }

    /** A signer with a key that is not the CA's (mode other-key): same issuer name, wrong signature. */
    static ContentSigner otherSigner() throws Exception {
        java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance(
            sigAlg.endsWith("ECDSA") ? "EC" : "RSA", "BC");
        g.initialize(sigAlg.endsWith("ECDSA") ? 256 : 2048);
        return new JcaContentSignerBuilder(sigAlg).setProvider("BC").build(g.generateKeyPair().getPrivate());
    }

    static ContentSigner signer() throws Exception {
        return new JcaContentSignerBuilder(sigAlg).setProvider("BC").build(caKey);
    }
}
