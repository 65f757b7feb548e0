//! `boneage serve`: the bone-age service — a REST API under `/v1` (described at
//! `/openapi.json`), Deeplasia's `POST /predict`, a web page at `/`, health checks,
//! metrics and an audit store. Stops on Ctrl-C or SIGTERM after finishing the
//! requests in flight.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use boneage::{DeviceChoice, ModelsDir};
use boneage_server::{Config, State, serve, shutdown_signal};

/// Arguments of `boneage serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Models folder (default: `$BONEAGE_MODELS`, else the shipped `models/`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// The audit store (SQLite; created when absent).
    #[arg(long, default_value = "boneage.sqlite")]
    db: PathBuf,
    /// Bearer token every route but `/`, the health checks and `/openapi.json` asks
    /// for (also read from `$BONEAGE_TOKEN`).
    #[arg(long, env = "BONEAGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Largest request body, MB.
    #[arg(long, default_value_t = 64)]
    max_body_mb: usize,
    /// Assessments computed at once (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Assessment requests that may wait for a worker; one more is answered 503
    /// with Retry-After (default: four per worker).
    #[arg(long)]
    queue: Option<usize>,
    /// Longest a request may take, from its first byte to its answer, seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
}

/// Runs `boneage serve`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let mut config = Config::new(ModelsDir::locate(args.models.as_deref())?, args.db);
    config.addr = args.addr;
    config.token = args.token;
    config.body_limit = args.max_body_mb << 20;
    if let Some(w) = args.workers {
        config.workers = w;
        config.queue = 4 * w;
    }
    if let Some(q) = args.queue {
        config.queue = q;
    }
    config.timeout = Duration::from_secs(args.timeout_s);
    config.device = device;
    config.validate().map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("listening on {}", config.addr))?;
        let addr = listener.local_addr()?;
        let (workers, queue, db) = (config.workers, config.queue, config.db.clone());
        let models = config.models.path.clone();
        let state = State::new(config)?;
        eprintln!(
            "boneage serve: http://{addr}/ (models {}, audit store {}, {workers} workers, queue {queue}); loading the models…",
            models.display(),
            db.display()
        );
        serve(state, listener, shutdown_signal()).await?;
        eprintln!("boneage serve: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
