//! Real packaged PHP applications from Debian behind paddock, on a database the test starts:
//! they install, log in, publish, upload and use their pretty URLs, and their internals stay
//! protected (docs/legacy-apps.md).

mod browser;
mod mediawiki;
mod phpmyadmin;
mod wordpress;
