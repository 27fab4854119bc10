//! A CMP CA made of Bouncy Castle's CMP classes (`tests/cmp/BcCmpCa.java`, on Debian's jars) as
//! an upstream CA that signs what each request asks for, unlike `openssl cmp`'s mock. It binds
//! 127.0.0.1 only, so it needs no network namespace. Killed by PID when dropped.

use super::ac_tools::{bc_classpath, compile_java};
use super::cmp::Pki;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// BcCmpCa.java compiled once per test binary.
fn classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| compile_java("bccmp", "tests/cmp/BcCmpCa.java"))
}

/// The running CA: its URL, and the log of what it issued and revoked.
pub struct BcCmpCa {
    child: Child,
    pub url: String,
    log: PathBuf,
    stderr: PathBuf,
}

impl BcCmpCa {
    /// Start it with the PKI's CA certificate and key (which also sign its answers; it trusts
    /// RA certificates that CA issued).
    pub fn start(pki: &Pki) -> BcCmpCa {
        Self::start_on(pki, 0)
    }

    /// As [`BcCmpCa::start`], on `port` (0: a free one), e.g. the port of a CA that was stopped.
    pub fn start_on(pki: &Pki, port: u16) -> BcCmpCa {
        Self::start_in_mode(pki, port, "")
    }

    /// As [`BcCmpCa::start_on`], behaving as `mode` says (`BCCMP_MODE`, comma-separated:
    /// `remember`, `no-retransmit`, `lose-first`, `wrong-subject`, `refuse-rr`, `longer`,
    /// `ca-flag`, `other-key`; see tests/cmp/BcCmpCa.java).
    pub fn start_in_mode(pki: &Pki, port: u16, mode: &str) -> BcCmpCa {
        let port_file = pki.path("bccmp.port");
        let _ = std::fs::remove_file(&port_file);
        let log = pki.path("bccmp.log");
        let stderr = pki.path("bccmp.stderr");
        let mut cp = classes().as_os_str().to_owned();
        cp.push(":");
        cp.push(bc_classpath());
        let child = Command::new("java")
            .arg("-cp")
            .arg(cp)
            .arg("BcCmpCa")
            .arg(&port_file)
            .arg(pki.path("ca.pem"))
            .arg(pki.path("ca.key"))
            .arg(&log)
            .arg(port.to_string())
            .env("BCCMP_MODE", mode)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("java (default-jdk-headless)");
        let mut ca = BcCmpCa {
            child,
            url: String::new(),
            log,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p;
            }
            if let Ok(Some(status)) = ca.child.try_wait() {
                panic!("BcCmpCa exited ({status}): {}", ca.stderr_text());
            }
            assert!(Instant::now() < deadline, "BcCmpCa did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        ca.url = format!("http://127.0.0.1:{}/pkix", port.trim());
        ca
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches("/pkix").parse().ok())
            .expect("port")
    }

    /// Serials (lowercase hex, canonical) of the certificates it issued, in order.
    pub fn issued(&self) -> Vec<String> {
        self.lines("issued")
            .into_iter()
            .map(|l| l[0].clone())
            .collect()
    }

    /// The transactionID (lowercase hex, no leading zeros) of each certificate it issued, in order.
    pub fn issued_transactions(&self) -> Vec<String> {
        self.lines("issued")
            .into_iter()
            .map(|l| l.get(1).cloned().unwrap_or_default())
            .collect()
    }

    /// The certificate (PEM) it issued with serial `serial` (lowercase hex), from its records.
    pub fn issued_pem(&self, serial: &str) -> String {
        std::fs::read_to_string(self.log.with_file_name(format!("issued-{serial}.pem")))
            .expect("the CA's record of the certificate")
    }

    /// The transactionIDs of the certConf messages it answered, in order.
    pub fn confirmations(&self) -> Vec<String> {
        self.lines("confirmed")
            .into_iter()
            .map(|l| l.first().cloned().unwrap_or_default())
            .collect()
    }

    /// Serials of the certificates it sent again for a retransmitted request (mode `remember`).
    pub fn retransmitted(&self) -> Vec<String> {
        self.lines("retransmitted")
            .into_iter()
            .map(|l| l[0].clone())
            .collect()
    }

    /// (serial, reason code or "-") of the revocations it granted, in order.
    pub fn revoked(&self) -> Vec<(String, String)> {
        self.lines("revoked")
            .into_iter()
            .map(|l| (l[0].clone(), l[1].clone()))
            .collect()
    }

    fn lines(&self, kind: &str) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix(kind).map(str::trim))
            .map(|l| l.split(' ').map(String::from).collect())
            .collect()
    }

    /// What it printed on stderr (stack traces of requests it could not answer).
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for BcCmpCa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
