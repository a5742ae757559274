//! Sites end to end: routing of static files and PHP, virtual hosts, what PHP sees compared with
//! nginx + php-fpm, and FastCGI peers (cgi-fcgi, nginx) against paddock's responder library.
//! Application mounts (`mounts`): a pool serving every path under a prefix, without script files.

mod cgi_differential;
mod fcgi_peers;
mod mounts;
mod routing;
mod virtual_hosts;
