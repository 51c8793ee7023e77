//! `login` and `logout`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result};
use image::registry::{Credentials, auth};

use super::registry_client;
use crate::flags::{GlobalArgs, LoginArgs, LogoutArgs};

/// Checks the credentials against the registry, then stores them.
pub async fn login(global: &GlobalArgs, args: &LoginArgs) -> Result<ExitCode> {
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the password from standard input")?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => anyhow::bail!("give the password with --password-stdin (or -p)"),
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    let credentials = Credentials::Basic {
        username: args.username.clone(),
        password: password.clone(),
    };
    let client = registry_client(global)?;
    client.check_login(&args.registry, &credentials).await?;
    auth::store_credentials(&args.registry, &args.username, &password)?;
    if !global.quiet {
        eprintln!("Login Succeeded ({})", args.registry);
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the stored credentials.
pub fn logout(args: &LogoutArgs) -> Result<ExitCode> {
    if auth::remove_credentials(&args.registry)? {
        eprintln!("Removed login credentials for {}", args.registry);
    } else {
        eprintln!("Not logged in to {}", args.registry);
    }
    Ok(ExitCode::SUCCESS)
}
