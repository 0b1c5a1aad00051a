//! The `pitrix` command: a thin shell over the library — arguments (`args`), the memory
//! bound (`memory`), catalog building and reporting (`catalog`), and the commands.

mod args;
mod catalog;
mod commands;
mod controller_args;
mod memory;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser as _;

use pitrix::Error;
use pitrix::diagnostics::{Diagnostic, Format};
use pitrix::{objects, pipeline, scaffold, schema};

use args::{Cli, Command, TargetArgs};
use catalog::{BuildFor, catalog_root, check_options, report};
use commands::{
    DiffRequest, apply, compile, compile_diff, import_charts, live_diff, lock_catalog,
    server_runtime, write_status,
};
use memory::limit_memory;

fn main() -> ExitCode {
    if let Err(e) = limit_memory() {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code());
    }
    let cli = Cli::parse();
    match run(cli.command, cli.env) {
        Ok(code) => code,
        // The one place a library error becomes an exit status.
        Err(e) => {
            eprintln!("error: {}", pitrix::redact::text(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(command: Command, env: Option<String>) -> Result<ExitCode, Error> {
    let build_for = |target: TargetArgs| BuildFor {
        env: env.as_deref(),
        target: target.target(),
    };
    match command {
        Command::New { dir, name } => {
            let name = match name {
                Some(n) => n,
                None => scaffold::name_for(&dir)?,
            };
            // Its messages name the directory already.
            let written =
                scaffold::new_named(&dir, &name).map_err(|e| Error::Catalog(e.to_string()))?;
            println!(
                "created catalog `{name}` in {} with {} files",
                dir.display(),
                written.len()
            );
            println!(
                "next: pitrix validate {0} && pitrix compile {0} -o out",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate {
            dir,
            format,
            online,
            cache,
            target,
        } => {
            let format = Format::from(format);
            let checks = pipeline::CheckOptions {
                package_cache: cache.package_cache(),
                ..check_options(online, build_for(target))
            };
            let dir = catalog_root(&dir);
            let (_catalog, diags) = pipeline::check_with(&dir, &checks);
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
        Command::Compile {
            dir,
            out,
            format,
            diff,
            base,
            exit_code,
            diff_out,
            full_diff_url,
            target,
            ..
        } if diff => compile_diff(
            &catalog_root(&dir),
            out.as_deref(),
            format,
            DiffRequest {
                base: base.as_deref(),
                exit_code,
                diff_out: &diff_out,
                full_diff_url,
                build_for: build_for(target),
            },
        ),
        Command::Compile {
            dir,
            out,
            format,
            publish,
            base_url,
            online,
            cache,
            target,
            ..
        } => {
            let dir = catalog_root(&dir);
            let out = out.unwrap_or_else(|| PathBuf::from("out"));
            let format = format.diagnostics()?;
            let publish = publish.then_some(pitrix::publish::PublishOptions { base_url });
            let checks = pipeline::CheckOptions {
                package_cache: cache.package_cache(),
                ..check_options(online, build_for(target))
            };
            compile(&dir, &out, format, &checks, publish.as_ref())
        }
        Command::Import(args) => import_charts(args),
        Command::Lock { dir, update, net } => lock_catalog(&dir, update, &net),
        Command::Apply(args) => {
            let build = build_for(args.target);
            apply(args, build)
        }
        Command::Diff(args) => {
            let build = build_for(args.target);
            live_diff(args, build)
        }
        Command::WriteStatus(args) => write_status(&args),
        Command::Export(args) if args.print_cluster_role => {
            print!("{}", pitrix::export::CLUSTER_ROLE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(args) => {
            pitrix::export::run(&args.options())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconcile(args) => {
            memory::few_arenas();
            server_runtime()?.block_on(pitrix::reconcile::run(args.options(env)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DeployManifests(args) => {
            let opts = args.options(env);
            // Replicas elect a leader: timings out of order would crash-loop every one.
            opts.controller.check(true)?;
            let manifests = pitrix::reconcile::deploy::manifests(&opts);
            print!("{}", pitrix::reconcile::deploy::to_yaml(&manifests));
            Ok(ExitCode::SUCCESS)
        }
        Command::Crds => {
            print!("{}", objects::crds_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { name, out } => {
            let schemas = schema::catalog_schemas();
            let kind = |file: &str| file.trim_end_matches(".schema.json").to_string();
            match (name, out) {
                (_, Some(dir)) => {
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    for (name, text) in schemas {
                        let path = dir.join(name);
                        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
                    }
                }
                // One JSON document, so that `pitrix schema app | jq` works.
                (Some(name), None) => match schemas.iter().find(|(f, _)| kind(f) == name) {
                    Some((_, text)) => print!("{text}"),
                    None => {
                        let names: Vec<String> = schemas.iter().map(|(f, _)| kind(f)).collect();
                        return Err(Error::InvalidValue(format!(
                            "no schema `{name}`; one of: {}",
                            names.join(", ")
                        )));
                    }
                },
                (None, None) => {
                    for (file, _) in &schemas {
                        println!("{}", kind(file));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!(
                "pitrix {} ({}/{})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Completion { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "pitrix", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => {
            use clap::CommandFactory as _;
            let command = Cli::command();
            match out {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    clap_mangen::generate_to(command, &dir).map_err(|e| Error::io(&dir, e))?;
                }
                None => clap_mangen::Man::new(command)
                    .render(&mut std::io::stdout())
                    .map_err(|e| Error::io("stdout", e))?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
