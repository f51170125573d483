//! The README's configuration table lists every flag and environment
//! variable the long-running commands take (serve, shim, healthcheck), read
//! from the command-line definition itself, so a new flag without a row
//! fails here.
use clap::CommandFactory;

const README: &str = include_str!("../../README.md");

/// The rows of the "## Configuration" table.
fn configuration_rows() -> Vec<&'static str> {
    let section = README
        .split("\n## Configuration")
        .nth(1)
        .expect("a Configuration section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `") || line.starts_with("| |"))
        .collect()
}

#[test]
fn every_flag_and_environment_variable_has_a_row_in_the_configuration_table() {
    let rows = configuration_rows();
    let cli = authd::cli::Cli::command();
    let mut commands = vec![cli.clone()];
    for name in ["serve", "shim", "healthcheck"] {
        commands.push(
            cli.find_subcommand(name)
                .unwrap_or_else(|| panic!("authd {name}"))
                .clone(),
        );
    }
    let mut missing = Vec::new();
    for command in &commands {
        for arg in command.get_arguments() {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let flag = format!("`--{long}`");
            let env = format!("`{}`", env.to_string_lossy());
            if !rows
                .iter()
                .any(|row| row.contains(&flag) && row.contains(&env))
            {
                missing.push(format!("{} {flag} {env}", command.get_name()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "README's configuration table lacks rows for: {missing:#?}"
    );
}

/// The body of the README's first fenced block of `lang` in the section
/// "Putting authd in front of a backend": what the gateway tests run.
fn door_block(lang: &str) -> String {
    let section = README
        .split("\n## Putting authd in front of a backend")
        .nth(1)
        .expect("a \"Putting authd in front of a backend\" section");
    let section = section.split("\n## ").next().unwrap();
    let fence = format!("```{lang}\n");
    let block = section
        .split(&fence)
        .nth(1)
        .unwrap_or_else(|| panic!("a {lang} block in the section"));
    block.split("\n```").next().unwrap().to_owned()
}

/// The nginx server block (authd on 127.0.0.1:8080, the backend on
/// 127.0.0.1:3000, `listen 80;`).
pub fn nginx_server_block() -> String {
    door_block("nginx")
}

/// The Caddy site block (for example.org).
pub fn caddy_site_block() -> String {
    door_block("caddyfile")
}
