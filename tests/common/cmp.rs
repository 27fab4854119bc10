//! An `openssl cmp` mock server (OpenSSL's own CMP server mode) as the upstream CA of the CMP
//! tests, with the PKI it needs made by the OpenSSL CLI: a test CA that also signs the server's
//! answers, an RA certificate and key for Vouch, and the certificate the mock hands out (it always
//! answers with its fixed `-rsp_cert`, so the test pre-signs the one it expects for the
//! subscriber's key and approved subject). A recording proxy between Vouch and the mock keeps
//! every request Vouch sends, for the independent decoder.
//!
//! The mock binds every interface: it may run only inside a private network namespace, which
//! [`in_netns`] makes by re-running the test binary under `unshare --net`.

use super::run;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set in the environment of the test binary re-run inside the network namespace.
pub const INNER: &str = "VOUCH_CMP_TEST_NETNS";

/// Run `test` (an async test body) inside a private network namespace with loopback up: outside
/// one, re-run this test binary for `name` only under `unshare --net` and assert that it passed.
/// The suite's PostgreSQL server on this host's loopback is not reachable from there over TCP, so
/// the inner run reaches it by its Unix socket (see [`postgres_by_socket`]); without one, it
/// runs on SQLite.
pub fn in_netns<F, Fut>(name: &str, test: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if std::env::var_os(INNER).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test());
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .env(
            "VOUCH_TEST_POSTGRES",
            super::postgres_server()
                .and_then(|s| postgres_by_socket(&s))
                .unwrap_or_default(),
        )
        .output()
        .expect("unshare (util-linux) and ip (iproute2), run as root");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name} inside `unshare --net`:\n{text}"
    );
}

/// The URL of the PostgreSQL server `server` (`postgres://user@127.0.0.1:port`, or localhost) by
/// its Unix socket in /var/run/postgresql, which a network namespace shares with the host (a
/// socket is a file): the host given percent-encoded as the socket directory, as sqlx (and libpq)
/// read it. None for another host, when the socket is not there, or when it does not let the
/// role in.
pub fn postgres_by_socket(server: &str) -> Option<String> {
    let (scheme, rest) = server.split_once("://")?;
    let (user, host) = rest.rsplit_once('@').unwrap_or(("", rest));
    let (name, port) = host.rsplit_once(':').unwrap_or((host, "5432"));
    if !matches!(name, "127.0.0.1" | "localhost") || port.parse::<u16>().is_err() {
        return None;
    }
    let dir = "/var/run/postgresql";
    if !Path::new(&format!("{dir}/.s.PGSQL.{port}")).exists() {
        return None;
    }
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    let url = format!("{scheme}://{user}{}:{port}", dir.replace('/', "%2F"));
    // The socket may ask for other credentials than TCP does (Debian's `local … peer`): use it
    // only if the suite's role gets in by it, never prompting (-w), within 5 s.
    let probe = Command::new("psql")
        .arg(format!("{url}/postgres"))
        .args(["-w", "-qAtc", "SELECT 1"])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(std::process::Stdio::null())
        .output();
    match probe {
        Ok(out) if out.status.success() => Some(url),
        Ok(out) => {
            eprintln!(
                "PostgreSQL by its socket in {dir}: {}; the network namespace runs on SQLite",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("psql: {e}; the network namespace runs on SQLite");
            None
        }
    }
}

fn openssl(args: &[&str], dir: &Path) {
    let (ok, text) = run(Command::new("openssl").args(args).current_dir(dir));
    assert!(ok, "openssl {args:?}: {text}");
}

/// Have the test CA sign `csr` with the extensions of `ext` for `days` into `out`.
fn sign_by_ca(csr: &str, ext: &str, days: &str, out: &str, dir: &Path) {
    let args = [
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        days,
        "-extfile",
        ext,
        "-out",
        out,
    ];
    openssl(&args, dir);
}

/// The test PKI's files (in one directory, names relative to it).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// A CA (`ca.pem`, `ca.key`), an RA certificate and key (`ra.pem`, `ra.key`, mode 0600) and
    /// the CMP server's (`srv.pem`, `srv.key`: OpenSSL leaves a self-signed signer out of
    /// extraCerts) it issued, a subscriber key (`subscriber.key`) and the certificate the mock
    /// will return for it (`leaf.pem`: CN=Li Wei, person@example.org, the person-signing
    /// profile's usages).
    pub fn make(dir: &Path) -> Pki {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let ca = [
            "req",
            "-x509",
            "-days",
            "3650",
            "-subj",
            "/O=City Test/CN=City CMP Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ];
        openssl(&[&ca[..2], &ec[..], &ca[2..]].concat(), dir);
        std::fs::write(
            dir.join("ra.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        for (name, subject) in [
            ("ra", "/O=City Test/CN=Vouch RA"),
            ("srv", "/O=City Test/CN=City CMP Server"),
        ] {
            let (key, csr, cert) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            let req = [
                "req", "-new", "-subj", subject, "-keyout", &key, "-out", &csr,
            ];
            openssl(&[&req[..2], &ec[..], &req[2..]].concat(), dir);
            sign_by_ca(&csr, "ra.ext", "30", &cert, dir);
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("ra.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "subscriber.key",
            ],
            dir,
        );
        std::fs::write(
            dir.join("leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n\
             extendedKeyUsage=emailProtection\nsubjectAltName=email:person@example.org\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        openssl(
            &[
                "req",
                "-new",
                "-key",
                "subscriber.key",
                "-subj",
                "/CN=Li Wei",
                "-out",
                "leaf.csr",
            ],
            dir,
        );
        sign_by_ca("leaf.csr", "leaf.ext", "700", "leaf.pem", dir);
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A TLS server certificate for 127.0.0.1 the CA issued (`tls.pem`, `tls.key`).
    pub fn tls_server(&self) {
        let dir = &self.dir;
        std::fs::write(
            dir.join("tls.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
            ],
            dir,
        );
        sign_by_ca("tls.csr", "tls.ext", "30", "tls.pem", dir);
    }

    /// A CSR (PEM) for the subscriber's key, as a client would send it to Vouch.
    pub fn subscriber_csr(&self) -> String {
        let key = std::fs::read(self.path("subscriber.key")).unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(&key).unwrap();
        super::csr_for(
            &key,
            openssl::hash::MessageDigest::sha256(),
            "ignored by the RA",
        )
    }

    /// The serial of `leaf.pem`, lowercase hex.
    /// The mock's certificate's serial, in Vouch's canonical form (no leading zero digit).
    pub fn leaf_serial(&self) -> String {
        let pem = std::fs::read(self.path("leaf.pem")).unwrap();
        let x = openssl::x509::X509::from_pem(&pem).unwrap();
        let hex = hex::encode(x.serial_number().to_bn().unwrap().to_vec());
        hex.trim_start_matches('0').to_string()
    }
}

/// A running `openssl cmp -port` mock server, killed by PID when dropped.
pub struct MockCmp {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl MockCmp {
    /// The mock on a free port with the PKI's files and `extra` options (`-poll_count`, ...).
    /// Signature protection: it signs with the server key and trusts the CA for Vouch's RA
    /// certificate; with `pbm` = Some((reference, secret)) it uses that shared secret instead.
    pub fn start(pki: &Pki, pbm: Option<(&str, &str)>, extra: &[&str]) -> MockCmp {
        MockCmp::start_returning(pki, pbm, "leaf.pem", extra)
    }

    /// [`MockCmp::start`] answering every certificate request with the PKI's file `cert`.
    pub fn start_returning(
        pki: &Pki,
        pbm: Option<(&str, &str)>,
        cert: &str,
        extra: &[&str],
    ) -> MockCmp {
        let port = super::cfssl::free_port();
        let log = pki.path(&format!("mock-{port}.log"));
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&pki.dir)
            .args(["cmp", "-port", &port.to_string(), "-rsp_cert", cert]);
        match pbm {
            None => {
                cmd.args([
                    "-srv_cert",
                    "srv.pem",
                    "-srv_key",
                    "srv.key",
                    "-srv_trusted",
                    "ca.pem",
                ]);
            }
            Some((reference, secret)) => {
                cmd.args([
                    "-srv_ref",
                    reference,
                    "-srv_secret",
                    &format!("pass:{secret}"),
                ]);
            }
        }
        let child = cmd
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("openssl cmp");
        let mut mock = MockCmp {
            child,
            url: format!("http://127.0.0.1:{port}/pkix/"),
            log,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = mock.child.try_wait().unwrap() {
                panic!("openssl cmp exited ({status}): {}", mock.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the mock did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        mock
    }

    /// What the mock logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for MockCmp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A recording HTTP proxy on 127.0.0.1: each POST body is kept, forwarded to `target`, and the
/// answer returned as it came, unless the test asked it to lose the answer to a kind of message
/// ([`Recorder::lose_answer_to`]): then the CA has the message, and Vouch gets a 503.
pub struct Recorder {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Vec<u8>>>>,
    /// The Content-Type of each request, as Vouch sent it.
    pub content_types: Arc<Mutex<Vec<String>>>,
    lose: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

/// The PKIBody tag of a PKIMessage (0xa0 + the body type: 0xa0 ir, 0xb8 certConf, ...).
pub fn body_tag(message: &[u8]) -> u8 {
    fn skip_header(der: &[u8]) -> usize {
        match der[1] {
            n if n < 0x80 => 2,
            n => 2 + usize::from(n & 0x7f),
        }
    }
    let inner = &message[skip_header(message)..];
    let header_len = {
        let h = skip_header(inner);
        let len = match inner[1] {
            n if n < 0x80 => usize::from(n),
            n => inner[2..2 + usize::from(n & 0x7f)]
                .iter()
                .fold(0usize, |a, b| (a << 8) | usize::from(*b)),
        };
        h + len
    };
    inner[header_len]
}

/// The body tag of ir.
pub const IR: u8 = 0xa0;
/// The body tag of certConf.
pub const CERT_CONF: u8 = 0xb8;
/// The body tag of rr.
pub const RR: u8 = 0xab;

impl Recorder {
    pub async fn start(target: &str) -> Recorder {
        let requests: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let content_types: Arc<Mutex<Vec<String>>> = Arc::default();
        let lose: Arc<Mutex<Vec<u8>>> = Arc::default();
        let (kept, target, losing) = (requests.clone(), target.to_string(), lose.clone());
        let types = content_types.clone();
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (kept, target, client) = (kept.clone(), target.clone(), client.clone());
                let (losing, types) = (losing.clone(), types.clone());
                async move {
                    kept.lock().unwrap().push(body.to_vec());
                    types.lock().unwrap().push(
                        headers
                            .get(axum::http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string(),
                    );
                    let resp = client
                        .post(&target)
                        .header("content-type", "application/pkixcmp")
                        .body(body.to_vec())
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status().as_u16();
                    let media = resp
                        .headers()
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    let bytes = resp.bytes().await.unwrap().to_vec();
                    let tag = body_tag(&body);
                    let lost = {
                        let mut l = losing.lock().unwrap();
                        l.iter().position(|t| *t == tag).map(|i| l.remove(i))
                    };
                    if lost.is_some() {
                        return (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            [(axum::http::header::CONTENT_TYPE, "text/plain".to_string())],
                            b"answer lost for the test".to_vec(),
                        );
                    }
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [(axum::http::header::CONTENT_TYPE, media)],
                        bytes,
                    )
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/pkix/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Recorder {
            url,
            requests,
            content_types,
            lose,
            task,
        }
    }

    /// Lose the CA's answer to the next message with body tag `tag` (the CA still gets it).
    pub fn lose_answer_to(&self, tag: u8) {
        self.lose.lock().unwrap().push(tag);
    }

    /// The requests so far.
    pub fn taken(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS front on 127.0.0.1 (`socat`, with the PKI's `tls.pem`) passing each connection on to
/// the plain HTTP server at `target_port`; killed when dropped.
pub struct TlsFront {
    child: Child,
    pub port: u16,
}

impl TlsFront {
    pub fn start(pki: &Pki, target_port: u16) -> TlsFront {
        let port = super::cfssl::free_port();
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
            pki.path("tls.pem").display(),
            pki.path("tls.key").display()
        );
        let child = Command::new("socat")
            .arg(listen)
            .arg(format!("TCP:127.0.0.1:{target_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (scripts/test.sh installs it)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "socat did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsFront { child, port }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `upstream.toml` for one CMP CA `city-cmp` at `url` signing person-signing, trusting the test
/// CA, with `keys` (more `key = value` lines). Paths are absolute (into the PKI's directory).
pub fn upstream_toml(pki: &Pki, url: &str, keys: &str) -> String {
    format!(
        "[[ca]]\nid = \"city-cmp\"\nkind = \"cmp\"\nurl = \"{url}\"\n\
         recipient = \"/O=City Test/CN=City CMP Test CA\"\n\
         trust_anchor_file = \"{}\"\n{keys}\nprofiles = [\"person-signing\"]\n",
        pki.path("ca.pem").display()
    )
}

/// The signature protection keys of `upstream.toml` for the PKI's RA credentials.
pub fn signature_keys(pki: &Pki) -> String {
    format!(
        "protection = \"signature\"\nra_certificate_file = \"{}\"\nra_key_file = \"{}\"",
        pki.path("ra.pem").display(),
        pki.path("ra.key").display()
    )
}
