// A strict relying party: the JDK's own PKIX validator with its revocation checker, no soft fail.
//
// Usage: java PkixCheck MODE ROOT LEAF [CA ...]
//   MODE    ocsp    every certificate, OCSP preferred; the CRL where a certificate names no
//                   responder (the JDK's default revocation options)
//           crl     every certificate, CRLs only (PREFER_CRLS + NO_FALLBACK)
//           ee-only the end entity only, OCSP preferred (ONLY_END_ENTITY; for diagnostics)
//   ROOT    the trust anchor (PEM or DER)
//   LEAF CA the path, end entity first (PEM or DER)
//
// Prints one line on stdout and exits with its code:
//   VALID                 0
//   REVOKED <reason>      2   (reason as RFC 5280 names it, e.g. keyCompromise)
//   INVALID <message>     1
// Details (the revoked certificate, the exception chain) go to stderr.

import java.io.FileInputStream;
import java.io.InputStream;
import java.security.Security;
import java.security.cert.CRLReason;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateRevokedException;
import java.security.cert.PKIXParameters;
import java.security.cert.PKIXRevocationChecker;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

public final class PkixCheck {
    public static void main(String[] args) {
        if (args.length < 3) {
            System.out.println("INVALID usage: PkixCheck ocsp|crl|ee-only ROOT LEAF [CA ...]");
            System.exit(64);
        }
        // Both switches are off by default in the JDK: OCSP from the AIA, CRLs from the CDP.
        Security.setProperty("ocsp.enable", "true");
        System.setProperty("com.sun.security.enableCRLDP", "true");
        try {
            EnumSet<PKIXRevocationChecker.Option> options =
                    EnumSet.noneOf(PKIXRevocationChecker.Option.class);
            switch (args[0]) {
                case "ocsp":
                    break;
                case "crl":
                    options.add(PKIXRevocationChecker.Option.PREFER_CRLS);
                    options.add(PKIXRevocationChecker.Option.NO_FALLBACK);
                    break;
                case "ee-only":
                    options.add(PKIXRevocationChecker.Option.ONLY_END_ENTITY);
                    break;
                default:
                    System.out.println("INVALID unknown mode " + args[0]);
                    System.exit(64);
            }
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            X509Certificate root = load(cf, args[1]);
            List<X509Certificate> path = new ArrayList<>();
            for (int i = 2; i < args.length; i++) {
                path.add(load(cf, args[i]));
            }
            CertPath certPath = cf.generateCertPath(path);

            CertPathValidator validator = CertPathValidator.getInstance("PKIX");
            PKIXRevocationChecker checker =
                    (PKIXRevocationChecker) validator.getRevocationChecker();
            checker.setOptions(options);
            PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
            // The built-in checking is replaced by the checker configured above, not switched off.
            params.setRevocationEnabled(false);
            params.addCertPathChecker(checker);

            validator.validate(certPath, params);
            System.out.println("VALID");
            System.exit(0);
        } catch (CertPathValidatorException e) {
            e.printStackTrace();
            CertificateRevokedException revoked = revokedCause(e);
            if (e.getReason() == CertPathValidatorException.BasicReason.REVOKED
                    || revoked != null) {
                String reason = revoked == null ? "unknown" : rfc5280(revoked.getRevocationReason());
                if (revoked != null) {
                    System.err.println("revoked at index " + e.getIndex() + " by "
                            + revoked.getAuthorityName() + " on " + revoked.getRevocationDate());
                }
                System.out.println("REVOKED " + reason);
                System.exit(2);
            }
            System.out.println("INVALID " + oneLine(e) + " (index " + e.getIndex() + ")");
            System.exit(1);
        } catch (Exception e) {
            e.printStackTrace();
            System.out.println("INVALID " + oneLine(e));
            System.exit(1);
        }
    }

    private static X509Certificate load(CertificateFactory cf, String file) throws Exception {
        try (InputStream in = new FileInputStream(file)) {
            return (X509Certificate) cf.generateCertificate(in);
        }
    }

    private static CertificateRevokedException revokedCause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof CertificateRevokedException) {
                return (CertificateRevokedException) t;
            }
        }
        return null;
    }

    /** The message of the exception and of each cause, on one line. */
    private static String oneLine(Throwable e) {
        StringBuilder sb = new StringBuilder();
        String last = null;
        for (Throwable t = e; t != null; t = t.getCause()) {
            String message = String.valueOf(t.getMessage());
            if (message.equals(last)) {
                continue;
            }
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(t.getClass().getSimpleName()).append(": ").append(message);
            last = message;
        }
        return sb.toString().replace('\n', ' ');
    }

    /** CRLReason as RFC 5280 spells it (KEY_COMPROMISE -> keyCompromise). */
    private static String rfc5280(CRLReason reason) {
        switch (reason) {
            case CA_COMPROMISE:
                return "cACompromise";
            case AA_COMPROMISE:
                return "aACompromise";
            default:
                StringBuilder sb = new StringBuilder();
                boolean upper = false;
                for (char c : reason.name().toLowerCase().toCharArray()) {
                    if (c == '_') {
                        upper = true;
                    } else {
                        sb.append(upper ? Character.toUpperCase(c) : c);
                        upper = false;
                    }
                }
                return sb.toString();
        }
    }
}
