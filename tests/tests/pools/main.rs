//! Worker pools end to end: faults, process isolation, the per-pool queue, sizing policies,
//! threaded pools and the CGI runner, an external php-fpm, privilege dropping, and the
//! `builtin = "php"` worker with its warm parent.

mod builtin_php;
mod builtin_php_ahead;
mod builtin_php_parent;
mod builtin_php_usage;
mod cpu_affinity;
mod faults;
mod isolation;
mod php_fpm_external;
mod privileges;
mod queue;
mod readiness;
mod sizing;
mod threaded;
