//! Legacy PHP applications kept safe as shipped: a site's native rules, `.htaccess` files read
//! with Apache's semantics (and compared with a real Apache 2.4 case by case), and real packaged
//! applications from Debian (WordPress, MediaWiki, phpMyAdmin) on a database the test starts,
//! installed, used and probed for their internals (docs/legacy-apps.md).

mod browser;
mod htaccess;
mod htaccess_differential;
mod mediawiki;
mod phpmyadmin;
mod rules;
mod wordpress;
