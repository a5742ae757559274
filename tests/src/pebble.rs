//! A real ACME server for the ACME tests: Debian's `pebble` (Let's Encrypt's test CA) with
//! `pebble-challtestsrv` as its DNS server, answering every name with 127.0.0.1, both started on
//! loopback ports of their own and stopped by pid.
//!
//! Pebble validates challenges by connecting to fixed ports (`httpPort` for HTTP-01, `tlsPort`
//! for TLS-ALPN-01), so the test reserves paddock's listener ports before starting either.
//! Pebble's directory is served over HTTPS with a certificate made here (a CA of the test's own,
//! [`Pebble::directory_ca`], which paddock is told to trust with `acme.ca_certificate`); the
//! certificates pebble *issues* chain to a root it generates at start, fetched from its
//! management port ([`Pebble::issuing_root`]): the test's TLS client trusts that root only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::peers::find_program;
use crate::wait::wait_for;

pub use crate::peers::loopback_port;

/// Where pebble validates, and how long its certificates live.
#[derive(Debug, Clone, Copy)]
pub struct PebbleOptions {
    /// The port HTTP-01 validation connects to (paddock's plain listener).
    pub http_port: u16,
    /// The port TLS-ALPN-01 validation connects to (paddock's HTTPS listener).
    pub tls_port: u16,
    /// Lifetime of issued certificates in seconds; `None` = pebble's default (years).
    pub validity_secs: Option<u64>,
}

/// Pebble's own ports: its directory, its management interface, and its DNS server's two.
#[derive(Debug, Clone, Copy)]
struct OwnPorts {
    listen: u16,
    management: u16,
    dns: u16,
    dns_management: u16,
}

#[derive(Debug)]
pub struct Pebble {
    dir: tempfile::TempDir,
    pebble: Child,
    dns: Child,
    /// The ACME directory URL.
    pub directory: String,
    options: PebbleOptions,
    ports: OwnPorts,
    log: Arc<Mutex<String>>,
}

impl Pebble {
    /// Starts pebble and its DNS server and waits until the directory is served; `None` (with
    /// the reason printed) when pebble is not installed.
    pub fn start(options: PebbleOptions) -> Option<Pebble> {
        // A port found free may be taken by another test's server before pebble binds it (the
        // tests run in parallel); pebble then exits, and a fresh set of ports is tried.
        for _ in 0..5 {
            let ports = OwnPorts {
                listen: loopback_port(),
                management: loopback_port(),
                dns: loopback_port(),
                dns_management: loopback_port(),
            };
            match Self::start_on(options, ports)? {
                Ok(pebble) => return Some(pebble),
                Err(why) => eprintln!("pebble did not start ({why}); trying other ports"),
            }
        }
        panic!("pebble did not start on five sets of ports");
    }

    /// Stops this pebble and starts a fresh one on the same ports: a CA that has forgotten
    /// every account, order and certificate, with a new issuing root.
    pub fn restart(mut self) -> Pebble {
        self.stop();
        Self::start_on(self.options, self.ports)
            .expect("pebble was there a moment ago")
            .unwrap_or_else(|why| panic!("pebble did not start again: {why}"))
    }

    /// `None` when pebble is not installed; `Err` when it did not come up on these ports.
    fn start_on(options: PebbleOptions, ports: OwnPorts) -> Option<Result<Pebble, String>> {
        let (Some(pebble_bin), Some(dns_bin)) =
            (find_program("pebble"), find_program("pebble-challtestsrv"))
        else {
            eprintln!(
                "pebble is not installed (apt-get install pebble; .ci/run does): ACME test skipped"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        make_directory_certificate(dir.path());
        let OwnPorts {
            listen,
            management,
            dns: dns_port,
            dns_management,
        } = ports;
        let mut config = serde_json::json!({
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("directory.pem"),
            "privateKey": dir.path().join("directory.key"),
            "httpPort": options.http_port,
            "tlsPort": options.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        });
        if let Some(validity) = options.validity_secs {
            config["certificateValidityPeriod"] = validity.into();
        }
        let config_path = dir.path().join("pebble.json");
        std::fs::write(
            &config_path,
            serde_json::json!({ "pebble": config }).to_string(),
        )
        .expect("write pebble config");
        let log = Arc::new(Mutex::new(String::new()));
        let dns = spawn_logged(
            Command::new(dns_bin)
                .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-management", &format!("127.0.0.1:{dns_management}")])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]),
            &log,
        );
        let pebble = spawn_logged(
            Command::new(pebble_bin)
                .arg("-config")
                .arg(&config_path)
                .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
                // No random validation delays, no rejected nonces, and every order proves its
                // names again (a renewal must pass a challenge, not reuse an authorization).
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0"),
            &log,
        );
        let mut pebble = Pebble {
            dir,
            pebble,
            dns,
            directory: format!("https://127.0.0.1:{listen}/dir"),
            options,
            ports,
            log,
        };
        // Up when its directory answers over TLS with this pebble's own CA (not merely when a
        // port answers: another process could hold it); down for good when a program exited.
        let up = wait_for("pebble's ACME directory", || {
            if pebble.exited() {
                return Some(false);
            }
            pebble.directory_answers().then_some(true)
        });
        if !up {
            let why = pebble.log();
            pebble.stop();
            return Some(Err(why));
        }
        Some(Ok(pebble))
    }

    fn exited(&mut self) -> bool {
        [&mut self.pebble, &mut self.dns]
            .into_iter()
            .any(|child| child.try_wait().is_ok_and(|status| status.is_some()))
    }

    fn directory_answers(&self) -> bool {
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--max-time", "5", "--cacert"])
            .arg(self.directory_ca())
            .arg(&self.directory)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The CA that pebble's own HTTPS certificate chains to (for `acme.ca_certificate`).
    pub fn directory_ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The root that issued certificates chain to, from pebble's management interface.
    pub fn issuing_root(&self) -> CertificateDer<'static> {
        let output = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(self.directory_ca())
            .arg(format!(
                "https://127.0.0.1:{}/roots/0",
                self.ports.management
            ))
            .output()
            .expect("curl");
        CertificateDer::from_pem_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "pebble's root: {e}: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }

    /// Orders pebble has accepted so far.
    pub fn orders(&self) -> usize {
        self.log().matches("Added order").count()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Pebble {
    fn stop(&mut self) {
        for child in [&mut self.pebble, &mut self.dns] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_logged(command: &mut Command, log: &Arc<Mutex<String>>) -> Child {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a pebble program");
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    child
}

/// A CA and a certificate for 127.0.0.1 signed by it, for pebble's directory (`ca.pem`,
/// `directory.pem`, `directory.key`).
fn make_directory_certificate(dir: &Path) {
    let run = |args: &[&str]| crate::openssl(dir, args);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-days", "2", "-subj", "/CN=test directory CA"],
        &["-keyout", "ca.key", "-out", "ca.pem"],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-subj",
            "/CN=pebble",
            "-keyout",
            "directory.key",
            "-out",
            "directory.csr",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("extensions"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "directory.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "extensions",
        "-out",
        "directory.pem",
    ]);
}
