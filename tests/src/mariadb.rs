//! A MariaDB server of the test's own: its data directory and socket under a temporary
//! directory, no TCP port, started from Debian's `mariadb-server` package and stopped by pid when
//! the test ends. Never the system service.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer its first ping (it creates its InnoDB files first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct MariaDb {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl MariaDb {
    /// Initialises a data directory and starts the server on a Unix socket.
    pub fn start() -> MariaDb {
        require_mariadb();
        let dir = tempfile::Builder::new()
            .prefix("mdb")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        // A temporary directory of its own: a MariaDB server deletes every `#sql*` file it finds
        // in its tmpdir at start-up, so two servers sharing /tmp (two tests starting at once)
        // delete each other's temporary tables (seen: "Unknown table 'mysql.tmp_user_sys'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("create the server's tmpdir");
        let install = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db"])
            .arg("--auth-root-authentication-method=normal")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .output()
            .expect("run mariadb-install-db");
        assert!(
            install.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        let child = Command::new("mariadbd")
            .args(["--no-defaults", "--user=root", "--skip-networking"])
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let server = MariaDb { child, dir };
        let deadline = Instant::now() + START_TIMEOUT;
        while !server.ping() {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not answer within {START_TIMEOUT:?}: {}",
                std::fs::read_to_string(server.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn ping(&self) -> bool {
        Command::new("mariadb-admin")
            .args(["--no-defaults", "-uroot", "-S"])
            .arg(self.socket())
            .arg("ping")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Runs SQL as root and returns what it printed (tab-separated, no column names).
    pub fn sql(&self, statements: &str) -> String {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "-N", "-B", "-S"])
            .arg(self.socket())
            .args(["-e", statements])
            .output()
            .expect("run mariadb");
        assert!(
            out.status.success(),
            "{statements}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A database and a user with every right on it (password = user name).
    pub fn create_database(&self, name: &str) {
        self.sql(&format!(
            "CREATE DATABASE {name}; CREATE USER '{name}'@'localhost' IDENTIFIED BY '{name}'; \
             GRANT ALL ON {name}.* TO '{name}'@'localhost';"
        ));
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        crate::signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The suite installs `mariadb-server` (scripts/test.sh); say so plainly when it is missing.
fn require_mariadb() {
    assert!(
        Command::new("mariadbd").arg("--version").output().is_ok(),
        "mariadbd is missing: apt-get install mariadb-server (scripts/test.sh installs it)"
    );
}
