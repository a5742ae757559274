//! Running paddock: reload, binary upgrade, the `status`/`reload`/`stop` and `check` commands,
//! and the deployment assets.

mod check_command;
mod commands;
mod deploy_assets;
mod reload;
mod upgrade;
