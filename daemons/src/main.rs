//! `jobsched`: parses the command line, sets up logging, runs a role or a client command.

use clap::Parser;
use jobsched_daemons::cli::{Cli, Command, SecretsCommand};
use jobsched_daemons::client::Client;
use jobsched_daemons::config::{Config, LogFormat};
use jobsched_daemons::server::{self, Role};
use jobsched_daemons::{DaemonError, stop_signal, stores};

/// mimalloc: the scheduler allocates per row and per message on one thread and frees on another (sqlx's
/// SQLite worker, tokio's workers), where glibc's allocator spends much of its time (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

#[allow(clippy::print_stdout)] // The bound address and `config print` go to standard output.
async fn run(cli: Cli) -> Result<(), DaemonError> {
    let overrides = cli.overrides();
    let config = Config::load(cli.config.as_deref(), &overrides).map_err(DaemonError::Config)?;
    let role = match &cli.command {
        Command::Standalone(_) => Some(Role::Standalone),
        Command::Scheduler(_) => Some(Role::Scheduler),
        Command::Executor(_) => Some(Role::Executor),
        _ => None,
    };
    if let Some(role) = role {
        init_logging(&config);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| DaemonError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        println!(
            "jobsched {} listening on {}://{}",
            role.name(),
            if config.tls_cert.is_some() {
                "https"
            } else {
                "http"
            },
            listener.local_addr()?
        );
        return server::run(role, config, listener, stop_signal()).await;
    }
    let output = cli.output();
    let client = || Client::new(&config.server, output, config.ca_cert.as_deref());
    match cli.command {
        Command::Migrate(_) => {
            let url = config.store.as_deref().ok_or_else(|| {
                DaemonError::Config("jobsched migrate needs --store (or JOBSCHED_STORE)".into())
            })?;
            stores::open(url).await?;
            println!("{}: schema up to date", jobsched_mysql::redact_url(url));
            Ok(())
        }
        Command::Config { .. } => {
            print!("{}", config.redacted_toml());
            Ok(())
        }
        Command::Jobs { command, .. } => client()?.jobs(command).await,
        Command::Tasks { command, .. } => client()?.tasks(command).await,
        Command::Executors { command, .. } => client()?.executors(command).await,
        Command::System { command, .. } => client()?.system(command).await,
        Command::Alerts { command, .. } => client()?.alerts(command).await,
        Command::Login { args, .. } => client()?.login(args).await,
        Command::Logout { .. } => client()?.logout().await,
        Command::Users { command, .. } => client()?.users(command).await,
        Command::Tokens { command, .. } => client()?.tokens(command).await,
        Command::Audit { args, .. } => client()?.audit(args).await,
        Command::Backup(a) => {
            let url = store_url(a.store.as_deref())?;
            jobsched_daemons::backup::backup(&url, &a.out, a.with_history).await
        }
        Command::Restore(a) => {
            let url = store_url(a.store.as_deref())?;
            jobsched_daemons::backup::restore(&url, &a.from).await
        }
        Command::Keygen { out } => jobsched_daemons::backup::keygen(out.as_deref()),
        Command::Secrets {
            command: SecretsCommand::Init { secret_key_file },
        } => jobsched_daemons::backup::init_secrets(&secret_key_file),
        Command::Secrets {
            command:
                SecretsCommand::Rotate {
                    store,
                    secret_key_file,
                    data_dir,
                },
        } => {
            jobsched_daemons::backup::rotate_secrets(
                store.as_deref(),
                secret_key_file.as_deref(),
                data_dir.as_deref(),
            )
            .await
        }
        Command::Standalone(_) | Command::Scheduler(_) | Command::Executor(_) => Ok(()),
    }
}

/// The store a tool command works on.
fn store_url(given: Option<&str>) -> Result<String, DaemonError> {
    given.map(str::to_owned).ok_or_else(|| {
        DaemonError::Config(
            "give the store: --store mysql://user:password@host:port/db or sqlite://path (or \
             JOBSCHED_STORE)"
                .into(),
        )
    })
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("jobsched: {e}");
        std::process::exit(e.exit_code());
    }
}
