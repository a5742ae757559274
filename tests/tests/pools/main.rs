//! Worker pools end to end: faults, process isolation, the per-pool queue, sizing policies,
//! threaded pools and the CGI runner, an external php-fpm, and privilege dropping.

mod faults;
mod isolation;
mod php_fpm_external;
mod privileges;
mod queue;
mod sizing;
mod threaded;
