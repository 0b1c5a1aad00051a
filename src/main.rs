//! The `pitrix` command: a thin shell over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pitrix::diagnostics::{Diagnostic, Format, render};
use pitrix::{emit, objects, pipeline, scaffold, schema};

#[derive(Parser)]
#[command(name = "pitrix", version, about = "The KubeSphere App Store as code")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scaffold a catalog with one example of everything.
    New {
        /// Directory to create (must not exist, or be empty).
        dir: PathBuf,
    },
    /// Check a catalog: every rule, every file; non-zero exit on any error.
    Validate {
        /// The catalog directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// How to print diagnostics (`github` writes workflow annotations).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Validate, then write the compiled objects to the output directory.
    Compile {
        /// The catalog directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output directory; replaced as a whole, atomically.
        #[arg(short, long, default_value = "out")]
        out: PathBuf,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the CRDs of the five App Store kinds.
    Crds,
    /// Print the JSON Schemas of the catalog files, or write them into a directory.
    Schema {
        /// Write `<kind>.schema.json` files here instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Prints diagnostics: to stdout when they are the requested output, stderr otherwise.
fn report(diags: &[Diagnostic], root: &Path, format: Format, to_stdout: bool) {
    if diags.is_empty() && format == Format::Text {
        return;
    }
    let text = render(diags, root, format);
    if to_stdout {
        print!("{text}");
    } else {
        eprint!("{text}");
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::New { dir } => {
            let written = scaffold::new_catalog(&dir).map_err(|e| e.to_string())?;
            println!("created {} with {} files", dir.display(), written.len());
            println!(
                "next: pitrix validate {0} && pitrix compile {0} -o out",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { dir, format } => {
            let (_catalog, diags) = pipeline::check(&dir);
            let failed = diags.iter().any(Diagnostic::is_error);
            report(&diags, &dir, format, true);
            if !failed && format == Format::Text {
                println!("{}: catalog is valid", dir.display());
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Compile { dir, out, format } => match pipeline::build(&dir) {
            Err(diags) => {
                report(&diags, &dir, format, false);
                eprintln!(
                    "error: {} not written: the catalog has errors",
                    out.display()
                );
                Ok(ExitCode::FAILURE)
            }
            Ok((compiled, warnings)) => {
                report(&warnings, &dir, format, false);
                let files = emit::render(&compiled);
                emit::write_atomic(&out, &files).map_err(|e| e.to_string())?;
                eprintln!(
                    "compiled {} objects and {} review states into {}",
                    compiled.objects.len(),
                    compiled.status.len(),
                    out.display()
                );
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Crds => {
            print!("{}", objects::crds_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { out } => {
            let schemas = schema::catalog_schemas();
            match out {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    for (name, text) in schemas {
                        std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
                    }
                }
                None => {
                    for (name, text) in schemas {
                        println!("# {name}\n{text}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
