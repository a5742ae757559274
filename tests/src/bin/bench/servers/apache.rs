//! Apache httpd from Debian's package with a config of our own: prefork + mod_php, or event +
//! php-fpm through mod_proxy_fcgi (Debian's own `SetHandler "proxy:unix:…"` wiring). Modules as
//! Debian enables them for this job, mod_reqtimeout included; access log off.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::peers::Process;

use super::php::Backend;
use super::{
    accepts, loopback_port, running_as_root, server_dir, wait_for, Server, Shared, Workers,
};

const MODULES: &str = "/usr/lib/apache2/modules";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Mpm {
    /// One process per connection, PHP inside each (mod_php); a fixed number of processes.
    PreforkModPhp { processes: u32 },
    /// Threads with asynchronous keep-alive handling, PHP in php-fpm (Debian's default MPM).
    EventFpm,
}

pub(crate) fn start(
    shared: &Shared,
    name: &str,
    mpm: Mpm,
    backend: impl FnOnce(&std::path::Path) -> Option<Backend>,
) -> Server {
    let dir = server_dir("apache");
    let d = dir.path();
    let backend = backend(d);
    let addr = loopback_port();
    let modules = |names: &[(&str, &str)]| -> String {
        names
            .iter()
            .map(|(module, file)| format!("LoadModule {module} {MODULES}/{file}\n"))
            .collect()
    };
    let mut config = modules(&[
        ("authz_core_module", "mod_authz_core.so"),
        ("mime_module", "mod_mime.so"),
        ("dir_module", "mod_dir.so"),
        ("reqtimeout_module", "mod_reqtimeout.so"),
    ]);
    match mpm {
        Mpm::PreforkModPhp { processes } => {
            config += &modules(&[
                ("mpm_prefork_module", "mod_mpm_prefork.so"),
                ("php_module", "libphp8.2.so"),
            ]);
            config += &format!(
                "StartServers {processes}\nMinSpareServers {processes}\n\
                 MaxSpareServers {processes}\nServerLimit {processes}\n\
                 MaxRequestWorkers {processes}\nMaxConnectionsPerChild 0\n\
                 <FilesMatch \"\\.php$\">\n  SetHandler application/x-httpd-php\n</FilesMatch>\n"
            );
        }
        Mpm::EventFpm => {
            config += &modules(&[
                ("mpm_event_module", "mod_mpm_event.so"),
                ("proxy_module", "mod_proxy.so"),
                ("proxy_fcgi_module", "mod_proxy_fcgi.so"),
            ]);
            let socket = &backend.as_ref().expect("event MPM needs php-fpm").socket;
            config += &format!(
                "StartServers 2\nMinSpareThreads 25\nMaxSpareThreads 75\nThreadLimit 64\n\
                 ThreadsPerChild 25\nMaxRequestWorkers 150\nMaxConnectionsPerChild 0\n\
                 <FilesMatch \"\\.php$\">\n  SetHandler \"proxy:unix:{}|fcgi://localhost\"\n\
                 </FilesMatch>\n",
                socket.display()
            );
        }
    }
    let user = if running_as_root() {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    config += &format!(
        r#"ServerRoot {d}
ServerName localhost
Listen {addr}
ListenBacklog 4096
PidFile {d}/apache.pid
ErrorLog {d}/apache-error.log
LogLevel warn
DefaultRuntimeDir {d}
{user}TypesConfig /etc/mime.types
KeepAlive On
KeepAliveTimeout 5
MaxKeepAliveRequests 0
DocumentRoot {site}
DirectoryIndex index.php index.html
<Directory {site}>
  AllowOverride None
  Require all granted
</Directory>
"#,
        d = d.display(),
        site = shared.site.display(),
    );
    let config_path = d.join("apache.conf");
    std::fs::write(&config_path, config).expect("write apache.conf");
    let log = d.join("apache.stderr");
    let stderr = std::fs::File::create(&log).expect("apache.stderr");
    let mut process = Process::spawn(
        "apache2",
        Command::new("apache2")
            .arg("-f")
            .arg(&config_path)
            .arg("-DFOREGROUND")
            // Apache prefork signals its whole process group when it stops: give it its own,
            // or the benchmark would receive that SIGTERM too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr),
    );
    let pid = process.pid();
    let limit = Duration::from_secs(30);
    wait_for("Apache listening", limit, &log, || {
        process.assert_running(&|| std::fs::read_to_string(&log).unwrap_or_default());
        accepts(addr)
    });
    let apache_workers = Workers {
        parent: pid,
        comm: "apache2".into(),
    };
    if let Mpm::PreforkModPhp { processes } = mpm {
        wait_for("Apache's processes", limit, &log, || {
            apache_workers.pids().len() >= processes as usize
        });
    }
    let mut roots = vec![pid];
    let mut guards: Vec<Box<dyn std::fmt::Debug>> = vec![Box::new(process)];
    let workers = match (mpm, backend) {
        (_, Some(backend)) => {
            roots.push(backend.root);
            guards.push(backend.guard);
            backend.workers
        }
        (_, None) => apache_workers,
    };
    Server {
        name: name.to_string(),
        http: addr,
        https: None,
        roots,
        workers: Some(workers),
        guards,
        dir: Some(dir),
    }
}
