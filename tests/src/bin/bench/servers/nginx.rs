//! nginx (worker_processes auto) serving the bench site: static files, and `.php` over FastCGI
//! to a backend's Unix socket. Plain HTTP/1.1 on one port, TLS with HTTP/2 on another, with the
//! shared certificate. Access log off, as for every server here.

use std::net::{IpAddr, Ipv4Addr};

use harness::peers::{Nginx, NginxSettings};

use super::php::Backend;
use super::{loopback_port, server_dir, Server, Shared};

pub(crate) fn start(
    shared: &Shared,
    name: &str,
    backend: impl FnOnce(&std::path::Path) -> Option<Backend>,
) -> Server {
    let dir = server_dir("nginx");
    let backend = backend(dir.path());
    let https = loopback_port();
    let php = match &backend {
        Some(b) => format!(
            "location ~ \\.php$ {{\n      include /etc/nginx/fastcgi_params;\n      \
             fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n      \
             fastcgi_pass unix:{};\n    }}",
            b.socket.display()
        ),
        None => String::new(),
    };
    let body = format!(
        r#"  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  server {{
    listen {{listen}} backlog=4096;
    listen {https} ssl http2 backlog=4096;
    server_name localhost;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    root {site};
    index index.php index.html;
    {php}
  }}"#,
        cert = shared.certs.certificate.display(),
        key = shared.certs.key.display(),
        site = shared.site.display(),
    );
    let settings = NginxSettings {
        worker_processes: "auto".into(),
        worker_connections: 20000,
        main_extra: "worker_rlimit_nofile 65536;".into(),
    };
    let nginx = Nginx::start_with(
        dir.path(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        &settings,
        &body,
    );
    let mut roots = vec![nginx.pid()];
    let http = nginx.addr;
    let mut guards: Vec<Box<dyn std::fmt::Debug>> = vec![Box::new(nginx)];
    let mut workers = None;
    if let Some(backend) = backend {
        roots.push(backend.root);
        workers = Some(backend.workers);
        guards.push(backend.guard);
    }
    Server {
        name: name.to_string(),
        http,
        https: Some(https),
        roots,
        workers,
        guards,
        dir: Some(dir),
    }
}
