use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rampart_cli::Cli::parse();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    rampart_cli::run(cli, &mut stdout.lock(), &mut stderr.lock())
}
